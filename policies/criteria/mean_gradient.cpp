// mean_gradient: the mean gradient magnitude of each feature map (Liu & Wu 2019, "Channel
// Pruning Based on Mean Gradient for Accelerating Convolutional Neural Networks").
//
// A channel whose feature map the loss is insensitive to can go: the score is the mean over
// calibration images and positions of |dL/da|, with L the cross-entropy on the calibration
// labels and a the output of the group's producers (the conv/linear outputs, before BN), the
// network in eval mode. Unlike taylor it ignores the activation's own size, so it also ranks
// channels whose maps are large but that the rest of the network does not use. The group's
// score is the sum over its producers.

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <set>

#include "policies/criteria/criteria.h"

namespace tightfit::policies::criteria {

Scores mean_gradient_scores(const CriterionInput& in) {
  const std::vector<int> producers = decision_producers(in.ca);

  std::map<int, at::Tensor> sum;  // per producer: {channels} float64, per-image means summed
  for (int p : producers)
    sum[p] = torch::zeros({in.net.node(p).attrs.out_channels}, torch::kFloat64);
  double images = 0;
  for_each_batch_with_grads(
      in.net, in.calibration, producers,
      [&](size_t, const std::vector<at::Tensor>& values, const std::vector<at::Tensor>& grads) {
        images += static_cast<double>(values[0].size(0));
        for (size_t k = 0; k < producers.size(); ++k) {
          if (!grads[k].defined()) continue;  // the loss ignores it: gradient 0
          const at::Tensor& gr = grads[k];
          const at::Tensor per_image = gr.abs().reshape({gr.size(0), gr.size(1), -1}).mean(2);
          sum[producers[k]] += per_image.sum(0).to(torch::kFloat64);
        }
      });

  return for_decision_points(in.ca, [&](int g) {
    const graph::ChannelGroup& group = in.ca.groups[g];
    at::Tensor score = torch::zeros({group.channels}, torch::kFloat64);
    for (int p : group.producers) score += sum[p] / std::max(images, 1.0);
    return to_vector(score);
  });
}

}  // namespace tightfit::policies::criteria
