#pragma once
// Channel importance criteria for structured pruning. A criterion scores every channel of every
// prunable channel group (higher = more important = kept first); residual-coupled groups sum the
// evidence of all their member layers. Each criterion is one file under policies/criteria/.

#include <cstdint>
#include <string>
#include <vector>

#include "graph/channels.h"
#include "graph/network.h"
#include "policies/calibration.h"

namespace tightfit::policies {

/// Known criteria: l1, l2, fpgm, bn_scale, apoz, act_mean, act_var, entropy, taylor,
/// mean_gradient, thinet, random.
std::vector<std::string> criterion_names();

/// True for criteria that need calibration data (activations or gradients).
bool criterion_needs_data(const std::string& criterion);

/// Scores per group (index = group index in `ca`; empty vector for groups that are not decision
/// points). Throws ConfigError for an unknown criterion (listing the valid ones) or a data-driven
/// criterion without calibration data. `seed` drives `random` (and any sampling).
std::vector<std::vector<double>> channel_importance(const std::string& criterion,
                                                    const graph::Network& net,
                                                    const graph::ChannelAnalysis& ca,
                                                    const Calibration& calibration, uint64_t seed);

/// ThiNet's second step: after `pruned` was made from `original` by keeping `kept[g]` channels of
/// each group g of `ca` (analysis of `original`; empty = all kept; node ids are the same in both
/// networks), rescale the input channels of every consumer conv/linear so that its output on the
/// calibration data best reconstructs the original's (least squares, one scale per kept input
/// channel, as in Luo et al. 2017).
void thinet_refit(const graph::Network& original, graph::Network& pruned,
                  const graph::ChannelAnalysis& ca, const std::vector<std::vector<int64_t>>& kept,
                  const Calibration& calibration);

}  // namespace tightfit::policies
