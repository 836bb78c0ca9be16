// l2: the L2 norm of each filter, as in soft filter pruning (He et al. 2018, "Soft Filter Pruning
// for Accelerating Deep Convolutional Neural Networks").
//
// The same reasoning as l1 with the Euclidean norm, which weighs a few large weights more than
// many small ones. Each producer's norms are divided by the square root of the filter size (the
// root mean square of the weights), the L2 counterpart of l1's mean |w|: filters of different
// fan-in in one residual group then weigh alike. The group's score is the sum over producers.

#include <torch/torch.h>

#include "policies/criteria/criteria.h"

namespace tightfit::policies::criteria {

Scores l2_scores(const CriterionInput& in) {
  return for_decision_points(in.ca, [&](int g) {
    const graph::ChannelGroup& group = in.ca.groups[g];
    at::Tensor score = torch::zeros({group.channels}, torch::kFloat64);
    for (int p : group.producers) {
      const at::Tensor w = filter_matrix(in.net.node(p).params.at("weight")).to(torch::kFloat64);
      score += w.square().mean(1).sqrt();
    }
    return to_vector(score);
  });
}

}  // namespace tightfit::policies::criteria
