// entropy: the entropy of each channel's pooled activation (Luo & Wu 2017, "An Entropy-based
// Pruning Method for CNN Compression").
//
// A channel whose response hardly changes from image to image carries little information about
// the input. Following the paper, each channel's feature map is global-average-pooled per image
// (after the group's activation-function members, or its last member when it has none), the
// pooled values of all calibration images are put in a histogram of kBins equal bins between
// their minimum and maximum, and the score is the Shannon entropy of that histogram (nats). A
// channel that is constant (say, always zero after its ReLU) fills one bin: entropy 0. Groups
// with several activation members (residual stages) average the entropies.

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "policies/criteria/criteria.h"

namespace tightfit::policies::criteria {

namespace {

constexpr int64_t kBins = 32;  // the paper's m

/// Entropy of each column's histogram; `pooled` is {images, channels}.
at::Tensor column_entropy(const at::Tensor& pooled) {
  const at::Tensor x = pooled.to(torch::kFloat64);
  const at::Tensor lo = std::get<0>(x.min(0));
  const at::Tensor range = std::get<0>(x.max(0)) - lo;
  // A constant column (range 0) lands in bin 0 whatever the divisor; 1 avoids 0/0.
  const at::Tensor safe = torch::where(range > 0, range, torch::ones_like(range));
  const at::Tensor bin =
      ((x - lo) / safe * static_cast<double>(kBins)).floor().clamp(0, kBins - 1).to(torch::kInt64);
  at::Tensor counts = torch::zeros({x.size(1), kBins}, torch::kFloat64);
  counts.scatter_add_(1, bin.t().contiguous(),
                      torch::ones({x.size(1), x.size(0)}, torch::kFloat64));
  const at::Tensor p = counts / static_cast<double>(x.size(0));
  // 0 log 0 = 0.
  return -(p * torch::where(p > 0, p.log(), torch::zeros_like(p))).sum(1);
}

/// Global-average-pooled values of every image, kept until the histogram is made (they are
/// only images x channels numbers).
class PooledEntropy : public ActivationStat {
 public:
  void add(const at::Tensor& x) override { pooled_.push_back(x.mean(2)); }
  at::Tensor result() const override { return column_entropy(torch::cat(pooled_, 0)); }

 private:
  std::vector<at::Tensor> pooled_;  // per batch: {N, channels}
};

}  // namespace

Scores entropy_scores(const CriterionInput& in) {
  return activation_scores(in, /*any_activation=*/true,
                           [] { return std::make_unique<PooledEntropy>(); });
}

}  // namespace tightfit::policies::criteria
