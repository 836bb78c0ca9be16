// taylor: first-order Taylor expansion of the loss (Molchanov et al. 2017, "Pruning
// Convolutional Neural Networks for Resource Efficient Inference").
//
// Removing channel k of a feature map a sets it to zero; to first order the loss changes by
// sum over positions of a * dL/da. The criterion is the magnitude of that change,
// |mean over images of sum over positions (a_k * dL/da_k)|, with L the cross-entropy on the
// calibration labels and a the output of the group's producers (the conv/linear outputs, before
// BN), the network in eval mode. As in the paper each layer's scores are divided by their L2
// norm over channels, so that layers whose gradients differ in scale (depth, width) weigh alike;
// the group's score is the sum over its producers.

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <set>

#include "policies/criteria/criteria.h"

namespace tightfit::policies::criteria {

Scores taylor_scores(const CriterionInput& in) {
  const std::vector<int> producers = decision_producers(in.ca);

  std::map<int, at::Tensor> sum;  // per producer: {channels} float64, summed over images
  for (int p : producers)
    sum[p] = torch::zeros({in.net.node(p).attrs.out_channels}, torch::kFloat64);
  double images = 0;
  for_each_batch_with_grads(
      in.net, in.calibration, producers,
      [&](size_t, const std::vector<at::Tensor>& values, const std::vector<at::Tensor>& grads) {
        images += static_cast<double>(values[0].size(0));
        for (size_t k = 0; k < producers.size(); ++k) {
          if (!grads[k].defined()) continue;  // the loss ignores it
          const at::Tensor& a = values[producers[k]];
          const at::Tensor prod = (a * grads[k]).reshape({a.size(0), a.size(1), -1});
          sum[producers[k]] += prod.sum(at::IntArrayRef{0, 2}).to(torch::kFloat64);
        }
      });

  return for_decision_points(in.ca, [&](int g) {
    const graph::ChannelGroup& group = in.ca.groups[g];
    at::Tensor score = torch::zeros({group.channels}, torch::kFloat64);
    for (int p : group.producers) {
      const at::Tensor layer = (sum[p] / std::max(images, 1.0)).abs();
      const double norm = layer.norm().item<double>();
      score += norm > 0 ? layer / norm : layer;
    }
    return to_vector(score);
  });
}

}  // namespace tightfit::policies::criteria
