#include "search/report/sections.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include "search/report/format.h"
#include "search/report/svg.h"

namespace tightfit::search::report {

using nlohmann::json;

namespace {

// Objects and arrays in the context longer than this go into a collapsible <pre>.
constexpr size_t kInlineJsonChars = 100;

/// A marker's tooltip: what it is and its accuracy, latency and size (escaped).
std::string tip_for(const std::string& what, const json& e) {
  return esc(what) + ": accuracy " + fmt_accuracy(num(e, "accuracy")) + ", latency " +
         fmt_ms(num(e, "latency_ms")) + ", size " + fmt_bytes(num(e, "size_bytes"));
}

/// "<kind> #<index>", e.g. "search #12" (not escaped).
std::string eval_name(const json& e) {
  const auto index = num(e, "index");
  const std::string kind = str(e, "kind");
  std::string s = kind.empty() ? "evaluation" : kind;
  if (index && *index >= 0) s += " #" + printf_str("%.0f", *index);
  return s;
}

/// Whether some entry of `entries` has `key` (a column worth showing).
bool any_has(const json& entries, const char* key) {
  for (const auto& e : entries)
    if (e.is_object() && e.contains(key)) return true;
  return false;
}

/// base / v as "2.50&times;": a speed-up or how much smaller.
std::string ratio(std::optional<double> base, std::optional<double> v) {
  if (!base || !v || *v <= 0) return kDash;
  return printf_str("%.2f&times;", *base / *v);
}

/// {key: value} as "key value, ..." (escaped), leaving out `skip`.
std::string render_fields(const json& j, const std::set<std::string>& skip) {
  std::string s;
  if (!j.is_object()) return scalar_text(j);
  for (const auto& [k, v] : j.items())
    if (!skip.count(k)) s += (s.empty() ? "" : ", ") + esc(k) + " " + scalar_text(v);
  return s;
}

}  // namespace

std::string render_metrics(const json& e) {
  return "accuracy <b>" + fmt_accuracy(num(e, "accuracy")) + "</b>, latency <b>" +
         fmt_ms(num(e, "latency_ms")) + "</b>, size <b>" + fmt_bytes(num(e, "size_bytes")) +
         "</b>, FLOPs " + fmt_count(num(e, "flops"));
}

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

}  // namespace tightfit::search::report
