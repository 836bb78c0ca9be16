#include "search/report.h"

// How the page is built: every section is a function that returns an HTML fragment, and every
// value that comes from the run passes through `esc` (text and attributes alike), so a layer
// named "<script>" stays text. Numbers are read leniently (`num`): a field that is missing, null
// or of another type shows as a dash instead of failing, because front.json gains fields over
// time (budgets, predicted latencies) and old runs must still render. The charts are inline SVG
// with <title> tooltips, so the page needs neither JavaScript nor network access.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>

#include "core/files.h"
#include "core/errors.h"
#include "core/json.h"
#include "search/journal.h"

namespace tightfit::search {

namespace {

using nlohmann::json;

// Chart geometry, in SVG user units (px at 100% zoom).
constexpr double kChartWidth = 650;
constexpr double kChartHeight = 400;
constexpr double kPlotLeft = 60;
constexpr double kPlotTop = 16;
constexpr double kPlotWidth = 400;
constexpr double kPlotHeight = 320;
constexpr double kLegendLeft = kPlotLeft + kPlotWidth + 20;
constexpr int kTargetTicks = 6;
// Share of the data range added on each side so that points do not sit on the axes.
constexpr double kRangePad = 0.04;
// Objects and arrays in the context longer than this go into a collapsible <pre>.
constexpr size_t kInlineJsonChars = 100;
constexpr double kPi = 3.14159265358979323846;

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

/// j[key] as a finite number, if it is one.
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

const std::string kDash = "&mdash;";

std::string fmt_accuracy(std::optional<double> v) {
  return v ? printf_str("%.2f%%", *v * 100) : kDash;
}

std::string fmt_ms(std::optional<double> v) {
  if (!v) return kDash;
  const double a = std::fabs(*v);
  return printf_str(a < 1 ? "%.3f ms" : a < 100 ? "%.2f ms" : "%.1f ms", *v);
}

struct Unit {
  double scale;
  const char* name;
};

/// Binary units for sizes: the largest one that keeps `max_bytes` >= 1 of it.
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

/// Counts (FLOPs, params) with decimal prefixes: 1.23 M.
std::string fmt_count(std::optional<double> v) {
  if (!v) return kDash;
  const double a = std::fabs(*v);
  if (a >= 1e9) return printf_str("%.2f G", *v / 1e9);
  if (a >= 1e6) return printf_str("%.2f M", *v / 1e6);
  if (a >= 1e3) return printf_str("%.1f k", *v / 1e3);
  return printf_str("%.0f", *v);
}

/// Any JSON value as short text (escaped): strings bare, numbers compact, objects as
/// "key value, ..." and arrays as [a, b], nested alike.
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

std::string coord(double v) { return printf_str("%.1f", v); }

/// Orders layer names with their numbers by value: features.9 before features.10.
struct NaturalLess {
  bool operator()(const std::string& a, const std::string& b) const {
    size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
      if (std::isdigit(static_cast<unsigned char>(a[i])) &&
          std::isdigit(static_cast<unsigned char>(b[j]))) {
        size_t ie = i, je = j;
        while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
        while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
        const std::string na = a.substr(i, ie - i), nb = b.substr(j, je - j);
        if (na.size() != nb.size()) return na.size() < nb.size();  // no leading zeros assumed
        if (na != nb) return na < nb;
        i = ie, j = je;
      } else {
        if (a[i] != b[j]) return a[i] < b[j];
        ++i, ++j;
      }
    }
    return a.size() - i < b.size() - j;
  }
};

// ---------------------------------------------------------------------------------------------
// Charts

struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
  int decimals = 0;
};

/// Ticks at 1, 2 or 5 times a power of ten covering [lo, hi].
Axis nice_axis(double lo, double hi) {
  const bool non_negative = lo >= 0;
  if (!(hi > lo)) {
    const double half = lo != 0 ? std::fabs(lo) * 0.1 : 1.0;
    lo -= half;
    hi += half;
  }
  const double pad = (hi - lo) * kRangePad;
  lo -= pad;
  hi += pad;
  const double raw = (hi - lo) / (kTargetTicks - 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  Axis a;
  a.lo = std::floor(lo / step) * step;
  if (non_negative) a.lo = std::max(a.lo, 0.0);  // no negative sizes or latencies on the axis
  a.hi = std::ceil(hi / step) * step;
  a.decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  for (double t = a.lo; t <= a.hi + step * 1e-6; t += step) a.ticks.push_back(t);
  return a;
}

struct Point {
  double x = 0, y = 0;
  std::string tip;  ///< already escaped
  std::string label;
};

struct Chart {
  std::string title, x_label, y_label;
  std::vector<Point> all, front, uniform;
  std::optional<Point> baseline;
};

std::string diamond(double x, double y, double r) {
  return coord(x) + "," + coord(y - r) + " " + coord(x + r) + "," + coord(y) + " " + coord(x) +
         "," + coord(y + r) + " " + coord(x - r) + "," + coord(y);
}

std::string star(double x, double y, double r) {
  std::string pts;
  for (int k = 0; k < 10; ++k) {
    const double ang = -kPi / 2 + k * kPi / 5;
    const double rr = k % 2 == 0 ? r : r * 0.45;
    pts += (k ? " " : "") + coord(x + rr * std::cos(ang)) + "," + coord(y + rr * std::sin(ang));
  }
  return pts;
}

std::string render_chart(const Chart& c) {
  std::vector<const Point*> pts;
  for (const auto* set : {&c.all, &c.front, &c.uniform})
    for (const auto& p : *set) pts.push_back(&p);
  if (c.baseline) pts.push_back(&*c.baseline);

  std::ostringstream o;
  o << "<figure class=\"chart\"><figcaption>" << esc(c.title) << "</figcaption>\n"
    << "<svg width=\"" << kChartWidth << "\" height=\"" << kChartHeight << "\" viewBox=\"0 0 "
    << kChartWidth << ' ' << kChartHeight << "\" role=\"img\" aria-label=\"" << esc(c.title)
    << "\">\n";
  if (pts.empty()) {
    o << "<text x=\"" << kChartWidth / 2 << "\" y=\"" << kChartHeight / 2
      << "\" text-anchor=\"middle\" class=\"empty\">no successful evaluations to plot</text>\n"
      << "</svg></figure>\n";
    return o.str();
  }
  double x_lo = pts[0]->x, x_hi = x_lo, y_lo = pts[0]->y, y_hi = y_lo;
  for (const Point* p : pts) {
    x_lo = std::min(x_lo, p->x), x_hi = std::max(x_hi, p->x);
    y_lo = std::min(y_lo, p->y), y_hi = std::max(y_hi, p->y);
  }
  const Axis ax = nice_axis(x_lo, x_hi), ay = nice_axis(y_lo, y_hi);
  auto sx = [&](double x) { return kPlotLeft + (x - ax.lo) / (ax.hi - ax.lo) * kPlotWidth; };
  auto sy = [&](double y) {
    return kPlotTop + kPlotHeight - (y - ay.lo) / (ay.hi - ay.lo) * kPlotHeight;
  };
  const double bottom = kPlotTop + kPlotHeight, right = kPlotLeft + kPlotWidth;

  // Grid, ticks and axis labels.
  o << "<rect class=\"plot\" x=\"" << kPlotLeft << "\" y=\"" << kPlotTop << "\" width=\""
    << kPlotWidth << "\" height=\"" << kPlotHeight << "\"/>\n";
  for (double t : ax.ticks) {
    const std::string x = coord(sx(t));
    o << "<line class=\"grid\" x1=\"" << x << "\" y1=\"" << kPlotTop << "\" x2=\"" << x
      << "\" y2=\"" << bottom << "\"/><text class=\"tick\" x=\"" << x << "\" y=\"" << bottom + 16
      << "\" text-anchor=\"middle\">"
      << printf_str(("%." + std::to_string(ax.decimals) + "f").c_str(), t) << "</text>\n";
  }
  for (double t : ay.ticks) {
    const std::string y = coord(sy(t));
    o << "<line class=\"grid\" x1=\"" << kPlotLeft << "\" y1=\"" << y << "\" x2=\"" << right
      << "\" y2=\"" << y << "\"/><text class=\"tick\" x=\"" << kPlotLeft - 6 << "\" y=\"" << y
      << "\" dy=\"0.32em\" text-anchor=\"end\">"
      << printf_str(("%." + std::to_string(ay.decimals) + "f").c_str(), t) << "</text>\n";
  }
  o << "<text class=\"label\" x=\"" << kPlotLeft + kPlotWidth / 2 << "\" y=\"" << bottom + 40
    << "\" text-anchor=\"middle\">" << esc(c.x_label) << "</text>\n"
    << "<text class=\"label\" transform=\"translate(18 " << kPlotTop + kPlotHeight / 2
    << ") rotate(-90)\" text-anchor=\"middle\">" << esc(c.y_label) << "</text>\n";

  // Every evaluation as a grey dot, then the markers on top.
  for (const auto& p : c.all)
    o << "<circle class=\"ev\" cx=\"" << coord(sx(p.x)) << "\" cy=\"" << coord(sy(p.y))
      << "\" r=\"2.5\"><title>" << p.tip << "</title></circle>\n";

  // The front's staircase in this projection: members that raise the best accuracy so far, in
  // order of x; the line holds each level until the next member (what is attainable at x).
  std::vector<Point> sorted = c.front;
  std::sort(sorted.begin(), sorted.end(),
            [](const Point& a, const Point& b) { return a.x < b.x || (a.x == b.x && a.y > b.y); });
  std::string path;
  double best = -INFINITY;
  for (const auto& p : sorted) {
    if (p.y <= best) continue;
    path += path.empty() ? "M" + coord(sx(p.x)) + " " + coord(sy(p.y))
                         : " H" + coord(sx(p.x)) + " V" + coord(sy(p.y));
    best = p.y;
  }
  if (!path.empty()) {
    path += " H" + coord(right);
    o << "<path class=\"step\" d=\"" << path << "\"/>\n";
  }
  for (const auto& p : c.uniform)
    o << "<polygon class=\"uniform\" points=\"" << diamond(sx(p.x), sy(p.y), 8) << "\"><title>"
      << p.tip << "</title></polygon>\n";
  for (const auto& p : c.front) {
    o << "<circle class=\"front\" cx=\"" << coord(sx(p.x)) << "\" cy=\"" << coord(sy(p.y))
      << "\" r=\"5\"><title>" << p.tip << "</title></circle>";
    if (!p.label.empty())
      o << "<text class=\"pt\" x=\"" << coord(sx(p.x) + 7) << "\" y=\"" << coord(sy(p.y) - 6)
        << "\">" << esc(p.label) << "</text>";
    o << "\n";
  }
  if (c.baseline)
    o << "<polygon class=\"baseline\" points=\"" << star(sx(c.baseline->x), sy(c.baseline->y), 9)
      << "\"><title>" << c.baseline->tip << "</title></polygon>\n";

  // Legend, right of the plot so it never hides a point.
  double ly = kPlotTop + 10;
  auto legend = [&](const std::string& symbol, const std::string& text) {
    o << symbol << "<text class=\"legend\" x=\"" << kLegendLeft + 18 << "\" y=\"" << ly
      << "\" dy=\"0.32em\">" << esc(text) << "</text>\n";
    ly += 22;
  };
  const double lx = kLegendLeft + 6;
  legend("<circle class=\"ev key\" cx=\"" + coord(lx) + "\" cy=\"" + coord(ly) + "\" r=\"2.5\"/>",
         "evaluation (" + std::to_string(c.all.size()) + ")");
  legend("<circle class=\"front key\" cx=\"" + coord(lx) + "\" cy=\"" + coord(ly) + "\" r=\"5\"/>",
         "front member (" + std::to_string(c.front.size()) + ")");
  legend("<path class=\"step key\" d=\"M" + coord(lx - 8) + " " + coord(ly + 4) + " H" + coord(lx) +
             " V" + coord(ly - 4) + " H" + coord(lx + 8) + "\"/>",
         "front staircase");
  if (c.baseline)
    legend("<polygon class=\"baseline key\" points=\"" + star(lx, ly, 8) + "\"/>", "uncompressed");
  if (!c.uniform.empty())
    legend("<polygon class=\"uniform key\" points=\"" + diamond(lx, ly, 7) + "\"/>",
           "uniform (" + std::to_string(c.uniform.size()) + ")");
  o << "</svg></figure>\n";
  return o.str();
}

std::string tip_for(const std::string& what, const json& e) {
  return esc(what) + ": accuracy " + fmt_accuracy(num(e, "accuracy")) + ", latency " +
         fmt_ms(num(e, "latency_ms")) + ", size " + fmt_bytes(num(e, "size_bytes"));
}

std::string eval_name(const json& e) {
  const auto index = num(e, "index");
  const std::string kind = str(e, "kind");
  std::string s = kind.empty() ? "evaluation" : kind;
  if (index && *index >= 0) s += " #" + printf_str("%.0f", *index);
  return s;
}

/// Both charts: accuracy (%) against latency (ms) and against size.
std::string render_charts(const json& doc, const std::vector<json>& evaluations) {
  const json& front = doc.contains("front") ? doc["front"] : json::array();
  const json& baseline = doc.contains("baseline") ? doc["baseline"] : json();

  double max_bytes = 0;
  auto see = [&](const json& e) {
    if (auto s = num(e, "size_bytes")) max_bytes = std::max(max_bytes, *s);
  };
  for (const auto& e : evaluations) see(e);
  for (const auto& e : front) see(e);
  see(baseline);
  const Unit unit = byte_unit(max_bytes);

  Chart lat{"Accuracy vs latency", "latency (ms)", "accuracy (%)", {}, {}, {}, {}};
  Chart size{
      "Accuracy vs size", std::string("size (") + unit.name + ")", "accuracy (%)", {}, {}, {}, {}};
  // Adds e to both charts (each only if it has the coordinates it needs).
  auto add = [&](const json& e, const std::string& tip, const std::string& label,
                 const std::function<void(Chart&, Point)>& put) {
    const auto acc = num(e, "accuracy");
    if (!acc) return;
    if (auto l = num(e, "latency_ms")) put(lat, {*l, *acc * 100, tip, label});
    if (auto s = num(e, "size_bytes")) put(size, {*s / unit.scale, *acc * 100, tip, label});
  };
  for (const auto& e : evaluations) {
    if (failed(e)) continue;
    const std::string tip = tip_for(eval_name(e), e);
    add(e, tip, "", [](Chart& c, Point p) { c.all.push_back(std::move(p)); });
    if (str(e, "kind") == "uniform")
      add(e, tip, "", [](Chart& c, Point p) { c.uniform.push_back(std::move(p)); });
  }
  // front.json's own list of uniform baselines, for those the journal did not show.
  std::set<double> shown;
  for (const auto& e : evaluations)
    if (str(e, "kind") == "uniform" && num(e, "index")) shown.insert(*num(e, "index"));
  if (doc.contains("uniform") && doc["uniform"].is_array())
    for (const auto& e : doc["uniform"]) {
      const auto index = num(e, "index");
      if (failed(e) || (index && shown.count(*index))) continue;
      add(e, tip_for("uniform baseline", e), "",
          [](Chart& c, Point p) { c.uniform.push_back(std::move(p)); });
    }
  for (size_t i = 0; i < front.size(); ++i) {
    const std::string name = "front " + std::to_string(i);
    add(front[i], tip_for(name + " (" + eval_name(front[i]) + ")", front[i]), std::to_string(i),
        [](Chart& c, Point p) { c.front.push_back(std::move(p)); });
  }
  if (baseline.is_object())
    add(baseline, tip_for("baseline (uncompressed)", baseline), "",
        [](Chart& c, Point p) { c.baseline = std::move(p); });
  return "<section class=\"charts\">" + render_chart(lat) + render_chart(size) + "</section>\n";
}

// ---------------------------------------------------------------------------------------------
// Context, tables, policies

std::string render_context(const json& ctx) {
  if (!ctx.is_object() || ctx.empty()) return "<p class=\"muted\">no run context recorded</p>\n";
  // Known keys first, in reading order; every other key follows under its own name so that
  // fields added later show up without a change here.
  static const std::vector<std::pair<std::string, std::string>> kKnown = {
      {"model", "model"},
      {"target", "target"},
      {"precision", "precision"},
      {"threads", "threads"},
      {"cpu", "CPU"},
      {"hardware_threads", "hardware threads"},
      {"seed", "seed"},
      {"config_hash", "config hash"},
      {"strategy", "strategy"},
      {"evaluator", "evaluator"},
      {"decision_points", "decision points"},
      {"evaluations", "evaluations"},
      {"failed", "failed"},
      {"started", "started"},
      {"finished", "finished"},
      {"tightfit", "tightfit"},
      {"libtorch", "LibTorch"},
      {"onednn", "oneDNN"},
      {"nlohmann_json", "nlohmann/json"}};
  std::ostringstream o, big;
  o << "<dl class=\"context\">\n";
  auto item = [&](const std::string& label, const json& v) {
    std::string text;
    if (v.is_object() && v.contains("name") && v["name"].is_string()) {
      // {"name": ..., "settings": {...}} (evaluator): the name, then the rest compactly.
      json rest = v;
      rest.erase("name");
      text = esc(v["name"].get<std::string>());
      if (!rest.empty()) text += " <span class=\"muted\">" + scalar_text(rest) + "</span>";
    } else if ((v.is_object() || v.is_array()) && v.dump().size() > kInlineJsonChars) {
      big << "<details><summary>" << esc(label) << "</summary><pre>" << esc(v.dump(2))
          << "</pre></details>\n";
      return;
    } else {
      text = scalar_text(v);
    }
    o << "<div><dt>" << esc(label) << "</dt><dd>" << text << "</dd></div>\n";
  };
  std::set<std::string> done;
  for (const auto& [key, label] : kKnown) {
    if (!ctx.contains(key)) continue;
    item(label, ctx[key]);
    done.insert(key);
  }
  for (const auto& [key, v] : ctx.items())
    if (!done.count(key)) item(key, v);
  o << "</dl>\n" << big.str();
  return o.str();
}

bool any_has(const json& entries, const char* key) {
  for (const auto& e : entries)
    if (e.is_object() && e.contains(key)) return true;
  return false;
}

std::string ratio(std::optional<double> base, std::optional<double> v) {
  if (!base || !v || *v <= 0) return kDash;
  return printf_str("%.2f&times;", *base / *v);
}

/// How far the proxy could be trusted on this front: its rank agreement with the fine-tune.
std::string render_front_fidelity(const json& ctx) {
  if (!ctx.is_object() || !ctx.contains("front_fidelity")) return "";
  const json& f = ctx["front_fidelity"];
  const auto tau = num(f, "kendall_tau"), rho = num(f, "spearman_rho"), n = num(f, "n");
  auto stat = [](const std::optional<double>& v) {
    return v ? printf_str("%.3f", *v) : std::string("n/a");
  };
  std::string steps = kDash;
  if (f.contains("finetune") && f["finetune"].contains("steps"))
    steps = scalar_text(f["finetune"]["steps"]);
  return "<p class=\"fidelity\">Proxy fidelity on the front: Kendall&rsquo;s &tau; " + stat(tau) +
         ", Spearman&rsquo;s &rho; " + stat(rho) +
         " between the search&rsquo;s proxy accuracy and "
         "the accuracy after a fine-tune of " +
         esc(steps) + " steps, over " + (n ? printf_str("%.0f", *n) : kDash) +
         " front members.</p>\n";
}

std::string render_front_table(const json& front, const json& baseline) {
  if (!front.is_array() || front.empty())
    return "<p class=\"muted\">The front is empty: no candidate succeeded.</p>\n";
  const bool predicted = any_has(front, "predicted_latency_ms");
  const bool measured = any_has(front, "measured_latency_ms");
  const bool finetuned = any_has(front, "finetuned_accuracy");
  const auto base_lat = num(baseline, "latency_ms");
  const auto base_size = num(baseline, "size_bytes");
  std::ostringstream o;
  o << "<table class=\"front\"><thead><tr><th>#</th><th>evaluation</th><th>accuracy</th>"
    << "<th>&Delta; accuracy</th>" << (finetuned ? "<th>fine-tuned</th>" : "")
    << "<th>latency</th><th>spread</th><th>speed-up</th>"
    << (predicted ? "<th>predicted latency</th>" : "")
    << (measured ? "<th>measured latency</th>" : "")
    << "<th>size</th><th>smaller by</th><th>params</th><th>FLOPs</th></tr></thead><tbody>\n";
  auto row = [&](const std::string& first, const std::string& second, const json& e) {
    const auto acc = num(e, "accuracy"), base_acc = num(baseline, "accuracy");
    std::string delta = kDash;
    if (acc && base_acc) delta = printf_str("%+.2f pt", (*acc - *base_acc) * 100);
    o << "<tr><td>" << first << "</td><td>" << second << "</td><td>" << fmt_accuracy(acc)
      << "</td><td>" << delta << "</td><td>";
    if (finetuned) o << fmt_accuracy(num(e, "finetuned_accuracy")) << "</td><td>";
    o << fmt_ms(num(e, "latency_ms")) << "</td><td>" << fmt_ms(num(e, "latency_spread_ms"))
      << "</td><td>" << ratio(base_lat, num(e, "latency_ms")) << "</td>";
    if (predicted) o << "<td>" << fmt_ms(num(e, "predicted_latency_ms")) << "</td>";
    if (measured) o << "<td>" << fmt_ms(num(e, "measured_latency_ms")) << "</td>";
    o << "<td>" << fmt_bytes(num(e, "size_bytes")) << "</td><td>"
      << ratio(base_size, num(e, "size_bytes")) << "</td><td>" << fmt_count(num(e, "params"))
      << "</td><td>" << fmt_count(num(e, "flops")) << "</td></tr>\n";
  };
  if (baseline.is_object()) row("base", "uncompressed", baseline);
  for (size_t i = 0; i < front.size(); ++i) {
    const auto index = num(front[i], "index");
    const std::string kind = str(front[i], "kind");
    row("<a href=\"#m" + std::to_string(i) + "\">" + std::to_string(i) + "</a>",
        (index ? printf_str("%.0f", *index) : kDash) +
            (kind.empty() || kind == "search" ? ""
                                              : " <span class=\"muted\">" + esc(kind) + "</span>"),
        front[i]);
  }
  o << "</tbody></table>\n";
  return o.str();
}

/// A bit width as a coloured badge: fewer bits, warmer colour.
std::string bits_badge(const char* what, const json& v) {
  if (!v.is_number())
    return "<span class=\"badge\">" + esc(what) + " " + scalar_text(v) + "</span>";
  const double b = v.get<double>();
  const char* cls = b >= 32 ? "b32" : b >= 16 ? "b16" : b >= 8 ? "b8" : b >= 4 ? "b4" : "b2";
  return std::string("<span class=\"badge ") + cls + "\">" + what + " " + printf_str("%.0f", b) +
         "</span>";
}

std::string keep_bar(double fraction, const std::string& text) {
  const double pct = std::clamp(fraction, 0.0, 1.0) * 100;
  return std::string("<div class=\"bar\"><div class=\"fill") + (fraction >= 1 ? " full" : "") +
         "\" style=\"width:" + printf_str("%.1f", pct) + "%\"></div><span>" + text +
         "</span></div>";
}

const json& member(const json& policy, const char* key) {
  static const json kEmpty = json::object();
  if (!policy.is_object()) return kEmpty;
  const auto it = policy.find(key);
  return it != policy.end() && it->is_object() ? *it : kEmpty;
}

/// One card per front member: a row per channel group / layer with its keep fraction as a bar and
/// its bits, rank and sparsity as badges.
std::string render_policies(const json& front) {
  if (!front.is_array() || front.empty()) return {};
  static const std::set<std::string> kPerLayer = {"keep",     "keep_count", "weight_bits",
                                                  "act_bits", "rank",       "sparsity"};
  // Channel groups named by any member: a member that does not name one keeps it whole.
  std::set<std::string, NaturalLess> groups;
  for (const auto& e : front) {
    const json& p = e.is_object() && e.contains("policy") ? e["policy"] : json();
    for (const char* key : {"keep", "keep_count"})
      for (const auto& item : member(p, key).items()) groups.insert(item.key());
  }
  std::ostringstream o;
  o << "<div class=\"cards\">\n";
  for (size_t i = 0; i < front.size(); ++i) {
    const json& e = front[i];
    const json& p = e.is_object() && e.contains("policy") ? e["policy"] : json();
    o << "<div class=\"card\" id=\"m" << i << "\"><h3>front " << i << " <span class=\"muted\">"
      << fmt_accuracy(num(e, "accuracy")) << " &middot; " << fmt_ms(num(e, "latency_ms"))
      << " &middot; " << fmt_bytes(num(e, "size_bytes")) << "</span></h3>\n";
    // Global method choices (criterion, quantization, factorization, ...), whatever is there.
    std::string methods;
    if (p.is_object())
      for (const auto& [k, v] : p.items())
        if (!kPerLayer.count(k))
          methods += (methods.empty() ? "" : "; ") + esc(k) + ": " + scalar_text(v);
    if (!methods.empty()) o << "<p class=\"methods\">" << methods << "</p>\n";

    std::set<std::string, NaturalLess> names = groups;
    for (const auto& key : kPerLayer)
      for (const auto& item : member(p, key.c_str()).items()) names.insert(item.key());
    if (names.empty()) {
      o << "<p class=\"muted\">uncompressed: the policy changes nothing</p></div>\n";
      continue;
    }
    const json& keep = member(p, "keep");
    const json& keep_count = member(p, "keep_count");
    o << "<table class=\"layers\"><thead><tr><th>group / layer</th><th>channels kept</th>"
      << "<th>bits, rank, sparsity</th></tr></thead><tbody>\n";
    for (const auto& name : names) {
      std::string bar;
      if (keep_count.contains(name)) {
        bar = "<span class=\"count\">" + scalar_text(keep_count[name]) + " channels</span>";
      } else if (keep.contains(name) && keep[name].is_number()) {
        const double f = keep[name].get<double>();
        bar = keep_bar(f, printf_str("%.3g", f));
      } else if (groups.count(name)) {
        bar = keep_bar(1.0, "1");
      } else {
        bar = "<span class=\"muted\">" + kDash + "</span>";
      }
      std::string badges;
      if (member(p, "weight_bits").contains(name))
        badges += bits_badge("W", member(p, "weight_bits")[name]);
      if (member(p, "act_bits").contains(name))
        badges += bits_badge("A", member(p, "act_bits")[name]);
      if (member(p, "rank").contains(name))
        badges +=
            "<span class=\"badge rank\">rank " + scalar_text(member(p, "rank")[name]) + "</span>";
      if (member(p, "sparsity").contains(name)) {
        const json& s = member(p, "sparsity")[name];
        badges += "<span class=\"badge sparse\">sparse " +
                  (s.is_number() ? printf_str("%.0f%%", s.get<double>() * 100) : scalar_text(s)) +
                  "</span>";
      }
      o << "<tr><td class=\"name\">" << esc(name) << "</td><td>" << bar << "</td><td>" << badges
        << "</td></tr>\n";
    }
    o << "</tbody></table></div>\n";
  }
  o << "</div>\n";
  return o.str();
}

std::string render_metrics(const json& e) {
  return "accuracy <b>" + fmt_accuracy(num(e, "accuracy")) + "</b>, latency <b>" +
         fmt_ms(num(e, "latency_ms")) + "</b>, size <b>" + fmt_bytes(num(e, "size_bytes")) +
         "</b>, FLOPs " + fmt_count(num(e, "flops"));
}

/// {key: value} as "key value, ..." (escaped), leaving out `skip`.
std::string render_fields(const json& j, const std::set<std::string>& skip) {
  std::string s;
  if (!j.is_object()) return scalar_text(j);
  for (const auto& [k, v] : j.items())
    if (!skip.count(k)) s += (s.empty() ? "" : ", ") + esc(k) + " " + scalar_text(v);
  return s;
}

/// The budget answer. Shapes accepted: front.json's `best` as written by the controller
/// ({budget, met, best | closest, closest_excess}), `best` as a front entry with its `budget`
/// inside, or a top-level `budget` object ({met, closest, limits...}).
std::string render_budget(const json& doc) {
  const json box = doc.contains("best") && doc["best"].is_object()       ? doc["best"]
                   : doc.contains("budget") && doc["budget"].is_object() ? doc["budget"]
                                                                         : json();
  if (!box.is_object()) return {};
  json best;
  if (box.contains("best") && box["best"].is_object())
    best = box["best"];
  else if (box.contains("accuracy"))
    best = box;  // the entry itself
  json limits;
  if (box.contains("budget") && box["budget"].is_object())
    limits = box["budget"];
  else if (doc.contains("budget") && doc["budget"].is_object())
    limits = doc["budget"];
  const bool met =
      box.contains("met") && box["met"].is_boolean() ? box["met"].get<bool>() : best.is_object();
  const json closest = box.contains("closest") ? box["closest"] : json();
  static const std::set<std::string> kNotLimits = {"met",  "closest", "closest_excess",
                                                   "best", "context", "policy"};

  std::ostringstream o;
  o << "<section class=\"budget " << (met ? "met" : "missed") << "\"><h2>"
    << (met ? "Best under budget" : "Budget not met") << "</h2>\n";
  if (limits.is_object()) o << "<p>budget: " << render_fields(limits, kNotLimits) << "</p>\n";
  auto entry = [&](const char* what, const json& e) {
    const auto index = num(e, "index");
    o << "<p>" << what << render_metrics(e);
    if (index) o << " &middot; evaluation " << printf_str("%.0f", *index);
    o << "</p>\n";
    if (e.contains("policy"))
      o << "<details><summary>policy</summary><pre>" << esc(e["policy"].dump(2))
        << "</pre></details>\n";
  };
  if (met && best.is_object()) entry("", best);
  if (!met) {
    if (closest.is_object()) {
      entry("closest: ", closest);
      if (const auto excess = num(box, "closest_excess"))
        o << "<p class=\"muted\">it exceeds the tightest limit by "
          << printf_str("%.1f%%", *excess * 100) << "</p>\n";
    } else {
      o << "<p class=\"muted\">no candidate to show</p>\n";
    }
  }
  o << "</section>\n";
  return o.str();
}

std::string render_failures(const std::vector<json>& evaluations) {
  std::ostringstream rows;
  size_t n = 0;
  for (const auto& e : evaluations)
    if (failed(e)) {
      ++n;
      rows << "<li>" << esc(eval_name(e)) << ": " << esc(str(e, "error")) << "</li>\n";
    }
  if (n == 0) return {};
  return "<details class=\"failures\"><summary>" + std::to_string(n) +
         " failed evaluation(s), not plotted</summary><ul>\n" + rows.str() + "</ul></details>\n";
}

constexpr const char* kStyle = R"css(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:24px;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}h3{font-size:14px;margin:0 0 6px}
.muted{color:#6b7280}
dl.context{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:2px 18px;margin:12px 0}
dl.context div{display:flex;gap:8px;border-bottom:1px solid #eceff3;padding:2px 0}
dt{color:#6b7280;min-width:120px}dd{margin:0;overflow-wrap:anywhere}
pre{background:#f1f3f6;padding:8px;overflow:auto;font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:8px}
figure.chart{margin:0;background:#fff;border:1px solid #e3e6eb;padding:6px}
figcaption{font-weight:600;padding:2px 6px}
svg text{font-family:inherit}
.plot{fill:#fff;stroke:#9aa3af}.grid{stroke:#edf0f3}
.tick{font-size:11px;fill:#4b5563}.label{font-size:12px;fill:#1d2330}.legend{font-size:12px}
.pt{font-size:10px;fill:#1d4ed8}.empty{fill:#6b7280}
circle.ev{fill:#b4bac3;fill-opacity:.75}
circle.front{fill:#2563eb;stroke:#fff;stroke-width:1.2}
path.step{fill:none;stroke:#2563eb;stroke-width:1.5;stroke-opacity:.7}
polygon.baseline{fill:#111827;stroke:#fff;stroke-width:1}
polygon.uniform{fill:#f59e0b;stroke:#92400e;stroke-width:1}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #e3e6eb;padding:3px 8px;text-align:right;white-space:nowrap}
table.layers{width:100%}table.layers td:last-child,table.layers th{white-space:normal}
th{background:#f1f3f6;font-weight:600}
table.layers td,table.layers th{text-align:left}
td.name{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;white-space:normal;word-break:break-all}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(400px,1fr));gap:12px}
.card{background:#fff;border:1px solid #e3e6eb;padding:10px;overflow-x:auto}
.methods{font-size:12px;color:#4b5563;margin:0 0 6px}
.bar{position:relative;width:120px;height:16px;background:#eef1f5}
.bar .fill{position:absolute;left:0;top:0;bottom:0;background:#60a5fa}
.bar .fill.full{background:#cbd5e1}
.bar span{position:absolute;left:6px;top:0;font-size:11px;line-height:16px}
.count{font-size:12px}
.badge{display:inline-block;font-size:11px;padding:0 5px;margin-right:4px;border-radius:3px;background:#e5e7eb}
.b32{background:#e5e7eb}.b16{background:#dbeafe}.b8{background:#bbf7d0}.b4{background:#fde68a}.b2{background:#fca5a5}
.rank{background:#e9d5ff}.sparse{background:#fbcfe8}
.budget{border:1px solid;padding:4px 14px;margin:16px 0;background:#fff}
.budget.met{border-color:#16a34a}.budget.missed{border-color:#dc2626}
.budget h2{margin:8px 0}
)css";

}  // namespace

std::string render_report(const nlohmann::json& front_doc,
                          const std::vector<nlohmann::json>& evaluations) {
  const json& ctx = front_doc.contains("context") ? front_doc["context"] : json();
  const json& front = front_doc.contains("front") && front_doc["front"].is_array()
                          ? front_doc["front"]
                          : json::array();
  const json& baseline = front_doc.contains("baseline") ? front_doc["baseline"] : json();
  const std::string model = str(ctx, "model");
  size_t failures = 0;
  for (const auto& e : evaluations) failures += failed(e) ? 1 : 0;

  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    // An empty icon: no favicon request, not even to the local folder.
    << "<link rel=\"icon\" href=\"data:,\">\n"
    << "<title>tightfit report" << (model.empty() ? "" : " &mdash; " + esc(model))
    << "</title>\n<style>" << kStyle << "</style></head><body>\n"
    << "<header><h1>tightfit search report</h1>\n<p class=\"muted\">" << evaluations.size()
    << " evaluations (" << failures << " failed), " << front.size() << " on the front";
  if (baseline.is_object()) o << "; baseline " << render_metrics(baseline);
  o << "</p>\n" << render_context(ctx) << "</header>\n";
  o << render_budget(front_doc);
  o << "<h2>Accuracy against cost</h2>\n" << render_charts(front_doc, evaluations);
  o << render_failures(evaluations);
  o << "<h2>Pareto front</h2>\n" << render_front_table(front, baseline);
  o << render_front_fidelity(ctx);
  if (!front.empty()) o << "<h2>Policies of the front members</h2>\n" << render_policies(front);
  o << "</body></html>\n";
  return o.str();
}

std::vector<nlohmann::json> read_journal_lines(const std::string& path) {
  return read_journal(path).lines;
}

void write_report(const std::string& run_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(run_dir);
  if (!fs::is_directory(dir))
    throw InputError("run folder '" + run_dir +
                     "' does not exist; pass the --out folder of `tightfit search`");
  const fs::path front_path = dir / "front.json";
  if (!fs::exists(front_path))
    throw InputError("'" + front_path.string() +
                     "' is missing: is this a finished `tightfit search` output folder?");
  const json doc = read_json_file(front_path.string());
  if (!doc.is_object() || !doc.contains("front") || !doc["front"].is_array())
    throw InputError("'" + front_path.string() +
                     "' has no \"front\" array: it is not a front.json written by tightfit search");
  const fs::path journal = dir / "evaluations.jsonl";
  const std::vector<json> evaluations =
      fs::exists(journal) ? read_journal_lines(journal.string()) : std::vector<json>{};

  const std::string html = render_report(doc, evaluations);
  write_file_atomic((dir / "report.html").string(), html);
}

}  // namespace tightfit::search
