#include "search/report/format.h"

#include <cmath>
#include <cstdio>

namespace tightfit::search::report {

using nlohmann::json;

std::string esc(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string printf_str(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

std::optional<double> num(const json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  const double v = it->get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

std::string str(const json& j, const char* key) {
  if (!j.is_object()) return {};
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool failed(const json& e) { return !str(e, "error").empty(); }

std::string fmt_accuracy(std::optional<double> v) {
  return v ? printf_str("%.2f%%", *v * 100) : kDash;
}

std::string fmt_ms(std::optional<double> v) {
  if (!v) return kDash;
  const double a = std::fabs(*v);
  return printf_str(a < 1 ? "%.3f ms" : a < 100 ? "%.2f ms" : "%.1f ms", *v);
}

Unit byte_unit(double max_bytes) {
  if (max_bytes >= 1024.0 * 1024 * 1024) return {1024.0 * 1024 * 1024, "GiB"};
  if (max_bytes >= 1024.0 * 1024) return {1024.0 * 1024, "MiB"};
  if (max_bytes >= 1024.0) return {1024.0, "KiB"};
  return {1.0, "B"};
}

std::string fmt_bytes(std::optional<double> v) {
  if (!v) return kDash;
  const Unit u = byte_unit(std::fabs(*v));
  if (u.scale == 1.0) return printf_str("%.0f B", *v);
  return printf_str("%.1f ", *v / u.scale) + u.name;
}

std::string fmt_count(std::optional<double> v) {
  if (!v) return kDash;
  const double a = std::fabs(*v);
  if (a >= 1e9) return printf_str("%.2f G", *v / 1e9);
  if (a >= 1e6) return printf_str("%.2f M", *v / 1e6);
  if (a >= 1e3) return printf_str("%.1f k", *v / 1e3);
  return printf_str("%.0f", *v);
}

std::string scalar_text(const json& v) {
  if (v.is_null()) return kDash;
  if (v.is_string()) return esc(v.get<std::string>());
  if (v.is_number_integer() || v.is_number_unsigned() || v.is_boolean()) return esc(v.dump());
  if (v.is_number()) return printf_str("%.6g", v.get<double>());
  std::string s;
  if (v.is_array()) {
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + scalar_text(x);
    return "[" + s + "]";
  }
  for (const auto& [k, x] : v.items())
    s += (s.empty() ? "" : ", ") + esc(k) + " " +
         (x.is_object() ? "{" + scalar_text(x) + "}" : scalar_text(x));
  return s;
}

}  // namespace tightfit::search::report
