#include "policies/policy.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>
#include <type_traits>

#include "core/json.h"
#include "policies/importance.h"

namespace tightfit::policies {

namespace {

const std::vector<std::string> kPolicyKeys = {
    "criterion",  "sparsity_scope", "quantization",  "factorization", "keep",
    "keep_count", "weight_bits",    "act_bits",      "rank",          "sparsity",
    "criteria",   "schemes",        "factorizations"};
const std::vector<std::string> kSparsityScopes = {"layer", "global"};

template <typename T>
std::map<std::string, T> read_map(const nlohmann::json& j, const std::string& key,
                                  const std::string& where, const char* what) {
  std::map<std::string, T> out;
  if (!j.contains(key)) return out;
  const auto& m = j.at(key);
  if (!m.is_object())
    throw ConfigError(where + "." + key + " must be an object {name: " + what + "}");
  for (auto it = m.begin(); it != m.end(); ++it) {
    const std::string name = where + "." + key + "." + it.key();
    if (!it->is_number()) throw ConfigError(name + " must be " + what);
    out[it.key()] = json_value<T>(*it, name);
  }
  return out;
}

/// {name: one of `valid`}; a value outside `valid` is a ConfigError listing them.
std::map<std::string, std::string> read_names(const nlohmann::json& j, const std::string& key,
                                              const std::string& where,
                                              const std::vector<std::string>& valid) {
  std::map<std::string, std::string> out;
  if (!j.contains(key)) return out;
  const auto& m = j.at(key);
  if (!m.is_object())
    throw ConfigError(where + "." + key + " must be an object {name: one of " + join(valid) + "}");
  for (auto it = m.begin(); it != m.end(); ++it) {
    const std::string name = where + "." + key + "." + it.key();
    if (!it->is_string() ||
        std::find(valid.begin(), valid.end(), it->get<std::string>()) == valid.end())
      throw ConfigError(name + " is " + it->dump() + "; valid values: " + join(valid));
    out[it.key()] = it->get<std::string>();
  }
  return out;
}

std::string list_some(const std::vector<std::string>& names) {
  constexpr size_t kMaxListed = 12;
  std::vector<std::string> head(names.begin(), names.begin() + std::min(names.size(), kMaxListed));
  std::string s = join(head);
  if (names.size() > kMaxListed) s += ", ... (" + std::to_string(names.size()) + " in all)";
  return s;
}

std::string ints(const std::vector<int>& v) {
  std::string s;
  for (int x : v) s += (s.empty() ? "" : ", ") + std::to_string(x);
  return s;
}

}  // namespace

const std::string& Policy::criterion_of(const std::string& id) const {
  const auto it = criteria.find(id);
  return it == criteria.end() ? criterion : it->second;
}

QuantConfig Policy::quantization_of(const std::string& name) const {
  QuantConfig q = quantization;
  if (const auto it = schemes.find(name); it != schemes.end()) q.scheme = it->second;
  return q;
}

LowRankConfig Policy::factorization_of(const std::string& name) const {
  LowRankConfig f = factorization;
  if (const auto it = factorizations.find(name); it != factorizations.end()) f.conv = it->second;
  return f;
}

nlohmann::json Policy::to_json() const {
  nlohmann::json j = {{"keep", keep}, {"weight_bits", weight_bits}};
  // Only what differs from the defaults, so that simple policies stay simple to read.
  if (!keep_count.empty()) j["keep_count"] = keep_count;
  if (!act_bits.empty()) j["act_bits"] = act_bits;
  if (!rank.empty()) j["rank"] = rank;
  if (!sparsity.empty()) j["sparsity"] = sparsity;
  if (!criteria.empty()) j["criteria"] = criteria;
  if (!schemes.empty()) j["schemes"] = schemes;
  if (!factorizations.empty()) j["factorizations"] = factorizations;
  const Policy defaults;
  if (criterion != defaults.criterion) j["criterion"] = criterion;
  if (sparsity_scope != defaults.sparsity_scope) j["sparsity_scope"] = sparsity_scope;
  if (quantization.to_json() != defaults.quantization.to_json())
    j["quantization"] = quantization.to_json();
  if (factorization.to_json() != defaults.factorization.to_json())
    j["factorization"] = factorization.to_json();
  return j;
}

Policy Policy::from_json(const nlohmann::json& j, const std::string& where) {
  check_keys(j, kPolicyKeys, where);
  Policy p;
  p.keep = read_map<double>(j, "keep", where, "a fraction in (0, 1]");
  p.keep_count = read_map<int64_t>(j, "keep_count", where, "a channel count >= 1");
  p.weight_bits = read_map<int>(j, "weight_bits", where, "an integer bit-width");
  p.act_bits = read_map<int>(j, "act_bits", where, "an integer bit-width");
  p.rank = read_map<double>(j, "rank", where, "a number");
  p.sparsity = read_map<double>(j, "sparsity", where, "a fraction in [0, 1)");
  for (const auto& [id, count] : p.keep_count)
    if (p.keep.count(id))
      throw ConfigError(where + " decides the channels of '" + id + "' twice, as keep " +
                        std::to_string(p.keep.at(id)) + " and keep_count " + std::to_string(count) +
                        "; give one of the two");
  p.criterion = get_or(j, "criterion", p.criterion, where);
  p.sparsity_scope = get_or(j, "sparsity_scope", p.sparsity_scope, where);
  if (j.contains("quantization"))
    p.quantization = QuantConfig::from_json(j["quantization"], where + ".quantization");
  if (j.contains("factorization"))
    p.factorization = LowRankConfig::from_json(j["factorization"], where + ".factorization");
  const auto criteria = criterion_names();
  if (std::find(criteria.begin(), criteria.end(), p.criterion) == criteria.end())
    throw ConfigError(where + ".criterion '" + p.criterion +
                      "' is unknown; valid criteria: " + join(criteria));
  p.criteria = read_names(j, "criteria", where, criteria);
  p.schemes = read_names(j, "schemes", where, quant_scheme_names());
  p.factorizations = read_names(j, "factorizations", where, kConvFactorizations);
  if (std::find(kSparsityScopes.begin(), kSparsityScopes.end(), p.sparsity_scope) ==
      kSparsityScopes.end())
    throw ConfigError(where + ".sparsity_scope '" + p.sparsity_scope +
                      "' is unknown; valid: " + join(kSparsityScopes));
  return p;
}

std::string Policy::key() const {
  std::ostringstream os;
  os << std::setprecision(6);
  for (const auto& [id, f] : keep)
    if (f < 1.0 && !keep_count.count(id)) os << "k:" << id << '=' << f << ';';
  for (const auto& [id, n] : keep_count) os << "kc:" << id << '=' << n << ';';
  for (const auto& [id, b] : weight_bits)
    if (b != 32) os << "b:" << id << '=' << b << ';';
  for (const auto& [id, b] : act_bits)
    if (b != 32) os << "a:" << id << '=' << b << ';';
  for (const auto& [id, r] : rank) os << "r:" << id << '=' << r << ';';
  for (const auto& [id, s] : sparsity)
    if (s > 0) os << "s:" << id << '=' << s << ';';
  for (const auto& [id, c] : criteria) os << "c:" << id << '=' << c << ';';
  for (const auto& [id, q] : schemes) os << "q:" << id << '=' << q << ';';
  for (const auto& [id, f] : factorizations) os << "f:" << id << '=' << f << ';';
  const Policy defaults;
  if (criterion != defaults.criterion) os << "criterion=" << criterion << ';';
  if (sparsity_scope != defaults.sparsity_scope) os << "scope=" << sparsity_scope << ';';
  if (quantization.to_json() != defaults.quantization.to_json())
    os << "q=" << quantization.to_json().dump() << ';';
  if (factorization.to_json() != defaults.factorization.to_json())
    os << "f=" << factorization.to_json().dump() << ';';
  return os.str();
}

DecisionPoints decision_points(const graph::Network& net) {
  return decision_points(net, graph::analyze_channels(net));
}

DecisionPoints decision_points(const graph::Network& net, const graph::ChannelAnalysis& ca) {
  DecisionPoints dp;
  for (int g : ca.decision_points) {
    const auto& group = ca.groups[g];
    ChannelDecision c{group.id, group.channels, {}};
    for (int p : group.producers) c.layers.push_back(net.node(p).name);
    dp.channels.push_back(std::move(c));
  }
  for (const auto& node : net.nodes()) {
    if (!graph::has_weights(node.op)) continue;
    LayerDecision l{node.name, graph::op_name(node.op), node.params.at("weight").numel(), 0};
    const auto& a = node.attrs;
    if (node.op == graph::OpKind::kLinear) l.full_rank = std::min(a.in_channels, a.out_channels);
    if (node.op == graph::OpKind::kConv2d && a.groups == 1) l.full_rank = a.in_channels;
    dp.layers.push_back(std::move(l));
  }
  return dp;
}

void validate(const Policy& policy, const graph::Network& net) {
  validate(policy, decision_points(net));
}

void validate(const Policy& policy, const DecisionPoints& dp) {
  std::vector<std::string> group_ids, layer_names;
  for (const auto& c : dp.channels) group_ids.push_back(c.id);
  for (const auto& l : dp.layers) layer_names.push_back(l.name);
  auto group = [&](const std::string& id, const char* what) -> const ChannelDecision& {
    for (const auto& c : dp.channels)
      if (c.id == id) return c;
    throw ConfigError(std::string("policy ") + what + " '" + id +
                      "', which is not a channel decision point of this model (a policy for a "
                      "different network?); valid ones: " +
                      list_some(group_ids) + " (see `tightfit info --model ...`)");
  };
  auto layer = [&](const std::string& name, const char* what) -> const LayerDecision& {
    for (const auto& l : dp.layers)
      if (l.name == name) return l;
    throw ConfigError(std::string("policy ") + what + " '" + name +
                      "', which is not a conv/linear layer of this model (a policy for a "
                      "different network?); valid ones: " +
                      list_some(layer_names) + " (see `tightfit info --model ...`)");
  };

  for (const auto& [id, f] : policy.keep) {
    group(id, "keeps channels of");
    if (!(f > 0.0 && f <= 1.0))
      throw ConfigError("policy keep fraction for '" + id + "' is " + std::to_string(f) +
                        "; it must be in (0, 1]");
  }
  for (const auto& [id, n] : policy.keep_count) {
    const auto& g = group(id, "keeps channels of");
    if (n < 1 || n > g.channels)
      throw ConfigError("policy keep_count for '" + id + "' is " + std::to_string(n) +
                        "; it must be in [1, " + std::to_string(g.channels) + "]");
  }
  for (const auto& [id, c] : policy.criteria) {
    group(id, "sets the criterion of");
    // ThiNet refits the consumers of every pruned group at once, from one reconstruction.
    if (c == "thinet" || (policy.criterion == "thinet" && c != "thinet"))
      throw ConfigError("policy criterion for '" + id + "' is " + c +
                        " but thinet refits every pruned group together; use thinet as the "
                        "policy's criterion for all groups, or per-group criteria without it");
  }
  for (const auto& [name, scheme] : policy.schemes) layer(name, "sets the scheme of");
  for (const auto& [name, method] : policy.factorizations) layer(name, "sets the factorization of");
  for (const auto& [name, bits] : policy.weight_bits) {
    layer(name, "sets weight bits of");
    if (bits == 32) continue;
    check_weight_bits(bits, policy.quantization_of(name), name);
  }
  for (const auto& [name, bits] : policy.act_bits) {
    layer(name, "sets activation bits of");
    if (std::find(kActivationBits.begin(), kActivationBits.end(), bits) == kActivationBits.end())
      throw ConfigError("policy activation bits for '" + name + "' is " + std::to_string(bits) +
                        "; allowed: " + ints(kActivationBits));
  }
  for (const auto& [name, r] : policy.rank) {
    const auto& l = layer(name, "sets the rank of");
    const std::string& by = policy.factorization.rank_by;
    const bool count = by == "count";
    if (count ? (r < 1 || r != std::floor(r)) : !(r > 0.0 && r <= 1.0))
      throw ConfigError("policy rank for '" + name + "' is " + std::to_string(r) +
                        "; with rank_by " + by + " it must be " +
                        (count ? "an integer >= 1" : "in (0, 1]"));
    if (count && l.full_rank > 0 && r > static_cast<double>(l.full_rank))
      throw ConfigError("policy rank for '" + name + "' is " + std::to_string(r) +
                        ", above its full rank " + std::to_string(l.full_rank));
    if (policy.sparsity.count(name) && policy.sparsity.at(name) > 0)
      throw ConfigError("policy both factorizes and sparsifies '" + name +
                        "'; choose one of rank and sparsity for a layer");
  }
  double global_sparsity = -1;
  for (const auto& [name, s] : policy.sparsity) {
    layer(name, "sets the sparsity of");
    if (!(s >= 0.0 && s < 1.0))
      throw ConfigError("policy sparsity for '" + name + "' is " + std::to_string(s) +
                        "; it must be in [0, 1)");
    if (policy.sparsity_scope == "global") {
      if (global_sparsity >= 0 && s != global_sparsity)
        throw ConfigError("policy sparsity_scope is global but '" + name + "' has sparsity " +
                          std::to_string(s) + " and another layer " +
                          std::to_string(global_sparsity) +
                          "; give every layer the same (global) target");
      global_sparsity = s;
    }
  }
}

}  // namespace tightfit::policies
