#pragma once
// Internal to the criteria: one scoring function per criterion (each in its own file, named
// after it) and the helpers they share. The public entry point is channel_importance() in
// policies/importance.h, which dispatches by name through the table in registry.cpp.
//
// Conventions every criterion follows: it returns one vector per group of the analysis, of size
// group.channels for decision points and empty for the others; higher = more important; evidence
// from several layers of a coupled group (residual stages) is added up.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "graph/channels.h"
#include "graph/network.h"
#include "policies/calibration.h"

namespace tightfit::policies::criteria {

/// Everything a criterion may read.
struct CriterionInput {
  const graph::Network& net;
  const graph::ChannelAnalysis& ca;
  const Calibration& calibration;
  uint64_t seed = 0;
};

using Scores = std::vector<std::vector<double>>;  ///< per group index of the analysis

// Data-free criteria (weights only).
Scores l1_scores(const CriterionInput& in);
Scores l2_scores(const CriterionInput& in);
Scores fpgm_scores(const CriterionInput& in);
Scores bn_scale_scores(const CriterionInput& in);
Scores random_scores(const CriterionInput& in);
// Activation statistics (one forward pass over the calibration batches).
Scores apoz_scores(const CriterionInput& in);
Scores act_mean_scores(const CriterionInput& in);
Scores act_var_scores(const CriterionInput& in);
Scores entropy_scores(const CriterionInput& in);
// Gradients of the loss on the calibration labels (one forward and backward pass per batch).
Scores taylor_scores(const CriterionInput& in);
Scores mean_gradient_scores(const CriterionInput& in);
// Reconstruction of the next layer (one forward pass).
Scores thinet_scores(const CriterionInput& in);

// ---------------------------------------------------------------------------------------------
// Shared helpers (feature_maps.cpp).

/// l1's scores for one group: summed over its producers, each filter's mean |w|. The fallback of
/// criteria that find no evidence of their own for a group (no BN, no consumer).
std::vector<double> l1_group(const graph::Network& net, const graph::ChannelGroup& group);

/// A conv/linear weight as a {filters, values per filter} matrix: a read-only float32 view of
/// the network's own buffer (valid while the network is; copy before modifying).
at::Tensor filter_matrix(const graph::Tensor& weight);

/// Scores with an empty vector for every group of `ca`, and `score(group index)` for every
/// decision point.
Scores for_decision_points(const graph::ChannelAnalysis& ca,
                           const std::function<std::vector<double>(int)>& score);

/// Copies a 1-D tensor (any floating type) into a vector of doubles.
std::vector<double> to_vector(const at::Tensor& t);

/// Every producer (conv/linear) of every decision point, sorted and unique.
std::vector<int> decision_producers(const graph::ChannelAnalysis& ca);

/// Runs `net` in eval mode without autograd over every calibration batch and hands each batch's
/// per-node outputs (index = node id) to `visit`. The outputs are released after each call, so
/// memory stays at one batch's feature maps. Throws InputError for a batch that does not fit the
/// network's input.
void for_each_batch(const graph::Network& net, const Calibration& calibration,
                    const std::function<void(size_t batch, const std::vector<at::Tensor>&)>& visit);

/// Same in eval mode with autograd on: `grads[k]` is dL/d(output of nodes[k]) for the summed
/// cross-entropy L of the batch against its labels (an undefined tensor where L does not depend
/// on that node). Throws InputError when the labels do not match the images.
void for_each_batch_with_grads(
    const graph::Network& net, const Calibration& calibration, const std::vector<int>& nodes,
    const std::function<void(size_t batch, const std::vector<at::Tensor>& values,
                             const std::vector<at::Tensor>& grads)>& visit);

/// The channels of `group` in a node's output as {N, channels, positions}: the first segment of
/// the group in the node's layout; positions are the spatial ones (H*W), or the features each
/// channel covers after a flatten, or 1.
at::Tensor group_channels(const at::Tensor& value, const graph::ChannelLayout& layout, int group);

/// Offset of the first segment of `group` in `layout` (in channels), or -1.
int64_t group_offset(const graph::ChannelLayout& layout, int group);

/// The members of a group whose outputs the activation criteria look at: its activation-function
/// members (ReLU and ReLU6, plus hard-swish when `any_activation`), else its last member.
std::vector<int> activation_members(const graph::Network& net, const graph::ChannelGroup& group,
                                    bool any_activation);

/// A per-channel statistic of one feature map, accumulated batch by batch.
class ActivationStat {
 public:
  virtual ~ActivationStat() = default;
  /// Adds one batch: a {N, channels, positions} block of the feature map.
  virtual void add(const at::Tensor& x) = 0;
  /// {channels}: the statistic over everything added.
  virtual at::Tensor result() const = 0;
};

/// Scores of the activation criteria: per decision point, the result of a fresh `make()`
/// statistic at each of its activation members (see activation_members), averaged over them,
/// from one pass over the calibration data.
Scores activation_scores(const CriterionInput& in, bool any_activation,
                         const std::function<std::unique_ptr<ActivationStat>()>& make);

}  // namespace tightfit::policies::criteria
