#pragma once
// Policy: the compression decisions for one network, keyed by decision-point id, plus the global
// choices of method. Channel decision points are the prunable channel groups of
// graph::analyze_channels (how many channels to keep); layer decision points are the conv/linear
// layers (weight bits, activation bits, rank, unstructured sparsity). A policy that names nothing
// compresses nothing (invariant 1).
//
// JSON form (every key optional):
//   {"criterion": "l1", "sparsity_scope": "layer",
//    "quantization": {"scheme": "symmetric", "granularity": "per_channel", ...},
//    "factorization": {"conv": "tucker2", "rank_by": "fraction"},
//    "keep": {group: fraction}, "keep_count": {group: channels},
//    "weight_bits": {layer: bits}, "act_bits": {layer: bits},
//    "rank": {layer: value}, "sparsity": {layer: fraction},
//    "criteria": {group: criterion}, "schemes": {layer: scheme},
//    "factorizations": {layer: "tucker2" | "spatial"}}
// The last three choose the method per decision point (a search's method genes); a point they do
// not name uses the global choice ("criterion", "quantization.scheme", "factorization.conv").

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "graph/channels.h"
#include "graph/network.h"
#include "policies/lowrank.h"
#include "policies/quantize.h"

namespace tightfit::policies {

struct Policy {
  std::map<std::string, double> keep;         ///< group -> fraction of channels kept, (0, 1]
  std::map<std::string, int64_t> keep_count;  ///< group -> channels kept (wins over `keep`)
  std::map<std::string, int> weight_bits;     ///< layer -> bits (kWeightBits)
  std::map<std::string, int> act_bits;        ///< layer -> bits of its input (kActivationBits)
  std::map<std::string, double> rank;         ///< layer -> rank, read per factorization.rank_by
  std::map<std::string, double> sparsity;     ///< layer -> share of weights zeroed, [0, 1)

  std::map<std::string, std::string> criteria;        ///< group -> criterion (over `criterion`)
  std::map<std::string, std::string> schemes;         ///< layer -> weight quantization scheme
  std::map<std::string, std::string> factorizations;  ///< layer -> conv factorization

  std::string criterion = "l1";          ///< channel importance (policies/importance.h)
  std::string sparsity_scope = "layer";  ///< layer: per-layer threshold; global: one threshold
  QuantConfig quantization;
  LowRankConfig factorization;

  /// The criterion that ranks the channels of group `id`: its own or the global one.
  const std::string& criterion_of(const std::string& id) const;
  /// The quantization of layer `name`'s weights: the global config with the layer's own scheme.
  QuantConfig quantization_of(const std::string& name) const;
  /// How layer `name` is factorized: the global config with the layer's own conv method.
  LowRankConfig factorization_of(const std::string& name) const;

  nlohmann::json to_json() const;
  /// Strict: unknown keys and wrong types are ConfigErrors that name `where` (a file or path).
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
  int64_t full_rank = 0;  ///< linear: min(out, in); conv: in channels (tucker2); 0 if grouped
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
