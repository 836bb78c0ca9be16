// bn_scale: the BatchNorm scaling factor of each channel, as in network slimming (Liu et al.
// 2017, "Learning Efficient Convolutional Networks through Network Slimming").
//
// BatchNorm multiplies each normalized channel by gamma; a channel whose |gamma| is small
// reaches the next layer scaled down to almost nothing (network slimming trains with an L1
// penalty on gamma to create such channels). The group's score is the sum of |gamma| over its
// batch_norm members (in MobileNetV2 an expansion group runs through two of them, in a residual
// stage through one per block), each read at the group's channel offset.
//
// A group without any batch_norm member has no scaling factor to read: it falls back to l1, the
// weight-magnitude criterion closest in spirit (both say "small output = unimportant").

#include <torch/torch.h>

#include "graph/executor.h"
#include "policies/criteria/criteria.h"

namespace tightfit::policies::criteria {

Scores bn_scale_scores(const CriterionInput& in) {
  return for_decision_points(in.ca, [&](int g) {
    const graph::ChannelGroup& group = in.ca.groups[g];
    at::Tensor score = torch::zeros({group.channels}, torch::kFloat64);
    bool found = false;
    for (int m : group.members) {
      const graph::Node& node = in.net.node(m);
      if (node.op != graph::OpKind::kBatchNorm) continue;
      const int64_t offset = group_offset(in.ca.layouts[m], g);
      const at::Tensor gamma = graph::to_torch(node.params.at("weight")).to(torch::kFloat64);
      score += gamma.narrow(0, offset, group.channels).abs();
      found = true;
    }
    return found ? to_vector(score) : l1_group(in.net, group);
  });
}

}  // namespace tightfit::policies::criteria
