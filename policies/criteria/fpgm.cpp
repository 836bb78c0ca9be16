// fpgm: filter pruning via geometric median (He et al. 2019, "Filter Pruning via Geometric
// Median for Deep Convolutional Neural Networks Acceleration").
//
// Norm criteria assume small filters are unimportant; FPGM instead removes the filters that the
// others can replace. The geometric median of a layer's filters minimizes the summed Euclidean
// distance to all of them, so the filters nearest to it carry the information the layer shares
// and are redundant. As in the paper's implementation the median itself is not computed: filter
// i scores sum_j ||f_i - f_j||_2, which is smallest for the filters closest to the median.
//
// Per producer the distances are divided by sqrt(filter size) and by the number of other
// filters (a mean root-mean-square distance), so that layers of different fan-in and width in
// one residual group weigh alike; the group's score is the sum over producers.

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "policies/criteria/criteria.h"

namespace tightfit::policies::criteria {

Scores fpgm_scores(const CriterionInput& in) {
  return for_decision_points(in.ca, [&](int g) {
    const graph::ChannelGroup& group = in.ca.groups[g];
    at::Tensor score = torch::zeros({group.channels}, torch::kFloat64);
    for (int p : group.producers) {
      const at::Tensor w = filter_matrix(in.net.node(p).params.at("weight")).to(torch::kFloat64);
      const at::Tensor dist = torch::cdist(w, w);  // {filters, filters}
      const double norm = std::sqrt(static_cast<double>(w.size(1))) *
                          static_cast<double>(std::max<int64_t>(w.size(0) - 1, 1));
      score += dist.sum(1) / norm;
    }
    return to_vector(score);
  });
}

}  // namespace tightfit::policies::criteria
