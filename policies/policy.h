#pragma once
// Policy: the compression decisions for one network, keyed by decision-point id. Channel
// decision points are the prunable channel groups of graph::analyze_channels (keep a fraction of
// their channels); layer decision points are the conv/linear layers (weight bits). A policy that
// names nothing compresses nothing.

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "graph/channels.h"
#include "graph/network.h"

namespace tightfit::policies {

/// Weight bit-widths the skeleton's quantizer supports (32 = float, 8 = per-channel symmetric).
inline const std::vector<int> kSupportedWeightBits = {32, 8};

struct Policy {
  std::map<std::string, double> keep;  ///< channel group id -> fraction of channels kept, (0, 1]
  std::map<std::string, int> weight_bits;  ///< conv/linear layer name -> bits

  nlohmann::json to_json() const;
  /// Parses {"keep": {...}, "weight_bits": {...}}; unknown keys and wrong types are ConfigErrors
  /// that name `where` (a file or config path).
  static Policy from_json(const nlohmann::json& j, const std::string& where = "policy");
  /// Canonical text form (sorted keys, fixed precision): equal policies give equal keys.
  std::string key() const;
};

struct ChannelDecision {
  std::string id;                   ///< group id (its first producing layer)
  int64_t channels = 0;             ///< channels in the uncompressed network
  std::vector<std::string> layers;  ///< conv/linear layers whose outputs are these channels
};

struct LayerDecision {
  std::string name;  ///< conv/linear node name
  std::string op;    ///< "conv2d" or "linear"
  int64_t weight_params = 0;
};

struct DecisionPoints {
  std::vector<ChannelDecision> channels;
  std::vector<LayerDecision> layers;
};

DecisionPoints decision_points(const graph::Network& net);
/// Same, from an analysis already made for `net`.
DecisionPoints decision_points(const graph::Network& net, const graph::ChannelAnalysis& ca);

/// Throws ConfigError naming the first decision point that does not exist (listing valid ids)
/// or the first value outside its allowed range.
void validate(const Policy& policy, const graph::Network& net);
/// Same, against decision points already listed.
void validate(const Policy& policy, const DecisionPoints& dp);

}  // namespace tightfit::policies
