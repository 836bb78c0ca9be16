#pragma once
// The search space: every decision point of a network with the values it may take. The
// skeleton's space has the fraction of channels kept per channel group and the weight bits per
// conv/linear layer.

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "policies/policy.h"

namespace tightfit::search {

/// `"channel_multiple": "auto"`: the multiple the target's measured latency curves prefer
/// (latency_models/channel_curve.h). Only `tightfit profile` measures them and resolves it.
inline constexpr int64_t kAutoChannelMultiple = 0;

struct SpaceConfig {
  std::vector<double> keep = {0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0};  ///< fractions kept
  std::vector<int> weight_bits = {32, 8};  ///< allowed weight bit-widths
  /// Kept channels rounded to this multiple; kAutoChannelMultiple ("auto" in JSON) until resolved.
  int64_t channel_multiple = 8;

  static SpaceConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
  /// channel_multiple, or a ConfigError naming `where` when it is still "auto".
  int64_t resolved_channel_multiple(const std::string& where) const;
};

class SearchSpace {
 public:
  /// A config whose channel_multiple is still "auto" is a ConfigError.
  SearchSpace(const policies::DecisionPoints& points, SpaceConfig config);

  const policies::DecisionPoints& points() const { return points_; }
  const SpaceConfig& config() const { return config_; }
  /// A policy with every decision drawn uniformly from its allowed values.
  policies::Policy sample(std::mt19937_64& rng) const;
  /// The same keep fraction and bits everywhere.
  policies::Policy uniform(double keep, int bits) const;

 private:
  policies::DecisionPoints points_;
  SpaceConfig config_;
};

}  // namespace tightfit::search
