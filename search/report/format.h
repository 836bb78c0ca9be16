#pragma once
// Text for report.html: HTML escaping, lenient reads of JSON fields (a missing, null or mistyped
// field is "no value", shown as a dash) and the formats of accuracies, milliseconds, bytes and
// counts.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace tightfit::search::report {

/// What a missing value shows as.
inline const std::string kDash = "&mdash;";

/// s with & < > " ' escaped: safe as element text and as a quoted attribute value.
std::string esc(const std::string& s);

/// One number through a printf format, e.g. printf_str("%.1f", v).
std::string printf_str(const char* fmt, double v);

/// j[key] as a finite number, if it is one.
std::optional<double> num(const nlohmann::json& j, const char* key);

/// j[key] if it is a string, else "".
std::string str(const nlohmann::json& j, const char* key);

/// Whether an evaluation (journal line or front entry) records an error.
bool failed(const nlohmann::json& e);

/// An accuracy in [0, 1] as a percentage: "91.20%".
std::string fmt_accuracy(std::optional<double> v);

/// Milliseconds, fewer decimals as the value grows: "0.512 ms", "12.34 ms", "123.4 ms".
std::string fmt_ms(std::optional<double> v);

/// A binary unit of size: bytes per unit and its name.
struct Unit {
  double scale;
  const char* name;
};

/// Binary units for sizes: the largest one that keeps `max_bytes` >= 1 of it.
Unit byte_unit(double max_bytes);

/// A size in bytes in its own binary unit: "1.5 MiB".
std::string fmt_bytes(std::optional<double> v);

/// Counts (FLOPs, params) with decimal prefixes: 1.23 M.
std::string fmt_count(std::optional<double> v);

/// Any JSON value as short text (escaped): strings bare, numbers compact, objects as
/// "key value, ..." and arrays as [a, b], nested alike.
std::string scalar_text(const nlohmann::json& v);

}  // namespace tightfit::search::report
