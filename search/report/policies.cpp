#include "search/report/policies.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

#include "search/report/format.h"

namespace tightfit::search::report {

using nlohmann::json;

namespace {

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

/// A bit width as a coloured badge: fewer bits, warmer colour.
std::string bits_badge(const char* what, const json& v) {
  if (!v.is_number())
    return "<span class=\"badge\">" + esc(what) + " " + scalar_text(v) + "</span>";
  const double b = v.get<double>();
  const char* cls = b >= 32 ? "b32" : b >= 16 ? "b16" : b >= 8 ? "b8" : b >= 4 ? "b4" : "b2";
  return std::string("<span class=\"badge ") + cls + "\">" + what + " " + printf_str("%.0f", b) +
         "</span>";
}

/// A keep fraction as a bar labelled `text`; a whole group's bar is greyed.
std::string keep_bar(double fraction, const std::string& text) {
  const double pct = std::clamp(fraction, 0.0, 1.0) * 100;
  return std::string("<div class=\"bar\"><div class=\"fill") + (fraction >= 1 ? " full" : "") +
         "\" style=\"width:" + printf_str("%.1f", pct) + "%\"></div><span>" + text +
         "</span></div>";
}

/// policy[key] when it is an object (a per-layer map), else an empty object.
const json& member(const json& policy, const char* key) {
  static const json kEmpty = json::object();
  if (!policy.is_object()) return kEmpty;
  const auto it = policy.find(key);
  return it != policy.end() && it->is_object() ? *it : kEmpty;
}

using GroupNames = std::set<std::string, NaturalLess>;

/// The per-layer maps of a policy; every other key is a global method choice.
const std::set<std::string> kPerLayer = {"keep",     "keep_count", "weight_bits",
                                         "act_bits", "rank",       "sparsity"};

/// The member's policy, or null.
json policy_of(const json& e) {
  return e.is_object() && e.contains("policy") ? e["policy"] : json();
}

/// Channel groups named by any member: a member that does not name one keeps it whole.
GroupNames channel_groups(const json& front) {
  GroupNames groups;
  for (const auto& e : front) {
    const json& p = policy_of(e);
    for (const char* key : {"keep", "keep_count"})
      for (const auto& item : member(p, key).items()) groups.insert(item.key());
  }
  return groups;
}

/// The "channels kept" cell of a row: a count, a bar, a full bar for a group this member does
/// not name, or a dash for a layer that is no channel group.
std::string keep_cell(const json& p, const std::string& name, const GroupNames& groups) {
  const json& keep = member(p, "keep");
  const json& keep_count = member(p, "keep_count");
  if (keep_count.contains(name))
    return "<span class=\"count\">" + scalar_text(keep_count[name]) + " channels</span>";
  if (keep.contains(name) && keep[name].is_number()) {
    const double f = keep[name].get<double>();
    return keep_bar(f, printf_str("%.3g", f));
  }
  if (groups.count(name)) return keep_bar(1.0, "1");
  return "<span class=\"muted\">" + kDash + "</span>";
}

/// The bits, rank and sparsity of one layer as badges.
std::string layer_badges(const json& p, const std::string& name) {
  std::string badges;
  if (member(p, "weight_bits").contains(name))
    badges += bits_badge("W", member(p, "weight_bits")[name]);
  if (member(p, "act_bits").contains(name)) badges += bits_badge("A", member(p, "act_bits")[name]);
  if (member(p, "rank").contains(name))
    badges += "<span class=\"badge rank\">rank " + scalar_text(member(p, "rank")[name]) + "</span>";
  if (member(p, "sparsity").contains(name)) {
    const json& s = member(p, "sparsity")[name];
    badges += "<span class=\"badge sparse\">sparse " +
              (s.is_number() ? printf_str("%.0f%%", s.get<double>() * 100) : scalar_text(s)) +
              "</span>";
  }
  return badges;
}

/// Front member i's card.
std::string policy_card(size_t i, const json& e, const GroupNames& groups) {
  const json p = policy_of(e);
  std::ostringstream o;
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

  GroupNames names = groups;
  for (const auto& key : kPerLayer)
    for (const auto& item : member(p, key.c_str()).items()) names.insert(item.key());
  if (names.empty()) {
    o << "<p class=\"muted\">uncompressed: the policy changes nothing</p></div>\n";
    return o.str();
  }
  o << "<table class=\"layers\"><thead><tr><th>group / layer</th><th>channels kept</th>"
    << "<th>bits, rank, sparsity</th></tr></thead><tbody>\n";
  for (const auto& name : names)
    o << "<tr><td class=\"name\">" << esc(name) << "</td><td>" << keep_cell(p, name, groups)
      << "</td><td>" << layer_badges(p, name) << "</td></tr>\n";
  o << "</tbody></table></div>\n";
  return o.str();
}

}  // namespace

std::string render_policies(const json& front) {
  if (!front.is_array() || front.empty()) return {};
  const GroupNames groups = channel_groups(front);
  std::ostringstream o;
  o << "<div class=\"cards\">\n";
  for (size_t i = 0; i < front.size(); ++i) o << policy_card(i, front[i], groups);
  o << "</div>\n";
  return o.str();
}

}  // namespace tightfit::search::report
