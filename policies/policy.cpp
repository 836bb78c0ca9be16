#include "policies/policy.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "graph/json_util.h"

namespace tightfit::policies {

nlohmann::json Policy::to_json() const { return {{"keep", keep}, {"weight_bits", weight_bits}}; }

Policy Policy::from_json(const nlohmann::json& j, const std::string& where) {
  check_keys(j, {"keep", "weight_bits"}, where);
  Policy p;
  if (j.contains("keep")) {
    const auto& k = j["keep"];
    if (!k.is_object()) throw ConfigError(where + ".keep must be an object {group: fraction}");
    for (auto it = k.begin(); it != k.end(); ++it) {
      if (!it->is_number())
        throw ConfigError(where + ".keep." + it.key() + " must be a number in (0, 1]");
      p.keep[it.key()] = it->get<double>();
    }
  }
  if (j.contains("weight_bits")) {
    const auto& b = j["weight_bits"];
    if (!b.is_object()) throw ConfigError(where + ".weight_bits must be an object {layer: bits}");
    for (auto it = b.begin(); it != b.end(); ++it) {
      if (!it->is_number_integer())
        throw ConfigError(where + ".weight_bits." + it.key() + " must be an integer (32 or 8)");
      p.weight_bits[it.key()] = it->get<int>();
    }
  }
  return p;
}

std::string Policy::key() const {
  std::ostringstream os;
  os << std::setprecision(6);
  for (const auto& [id, f] : keep)
    if (f < 1.0) os << "k:" << id << '=' << f << ';';
  for (const auto& [id, b] : weight_bits)
    if (b != 32) os << "b:" << id << '=' << b << ';';
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
  for (const auto& node : net.nodes())
    if (graph::has_weights(node.op))
      dp.layers.push_back({node.name, graph::op_name(node.op), node.params.at("weight").numel()});
  return dp;
}

namespace {
std::string list_some(const std::vector<std::string>& names) {
  constexpr size_t kMaxListed = 12;
  std::vector<std::string> head(names.begin(), names.begin() + std::min(names.size(), kMaxListed));
  std::string s = join(head);
  if (names.size() > kMaxListed) s += ", ... (" + std::to_string(names.size()) + " in all)";
  return s;
}
}  // namespace

void validate(const Policy& policy, const graph::Network& net) {
  validate(policy, decision_points(net));
}

void validate(const Policy& policy, const DecisionPoints& dp) {
  std::vector<std::string> group_ids, layer_names;
  for (const auto& c : dp.channels) group_ids.push_back(c.id);
  for (const auto& l : dp.layers) layer_names.push_back(l.name);
  for (const auto& [id, f] : policy.keep) {
    if (std::find(group_ids.begin(), group_ids.end(), id) == group_ids.end())
      throw ConfigError("policy keeps channels of '" + id +
                        "', which is not a channel decision point of this model; valid ones: " +
                        list_some(group_ids) + " (see `tightfit info --model ...`)");
    if (!(f > 0.0 && f <= 1.0))
      throw ConfigError("policy keep fraction for '" + id + "' is " + std::to_string(f) +
                        "; it must be in (0, 1]");
  }
  for (const auto& [name, bits] : policy.weight_bits) {
    if (std::find(layer_names.begin(), layer_names.end(), name) == layer_names.end())
      throw ConfigError("policy sets weight bits of '" + name +
                        "', which is not a conv/linear layer of this model; valid ones: " +
                        list_some(layer_names) + " (see `tightfit info --model ...`)");
    if (std::find(kSupportedWeightBits.begin(), kSupportedWeightBits.end(), bits) ==
        kSupportedWeightBits.end())
      throw ConfigError("policy weight bits for '" + name + "' is " + std::to_string(bits) +
                        "; supported: 32, 8");
  }
}

}  // namespace tightfit::policies
