// act_var: the variance of each channel's activation (Polyak & Wolf 2015, "Channel-Level
// Acceleration of Deep Face Representations").
//
// A channel whose output is nearly constant over the data carries no information the next
// layer could not get from a bias, so low variance = unimportant. The variance is over every
// calibration image and position after the group's activation-function members (averaged over
// them when a residual stage has several), or of its last member when it has none.

#include <torch/torch.h>

#include <algorithm>
#include <memory>

#include "policies/criteria/criteria.h"

namespace tightfit::policies::criteria {

namespace {

/// Population variance per channel: an exact two-pass variance per batch (in float32), merged
/// across batches in double with Chan et al.'s pairwise update. Cheaper than torch::var_mean
/// (a Welford loop, several times slower here) and free of the cancellation of
/// E[x^2] - E[x]^2.
class Variance : public ActivationStat {
 public:
  void add(const at::Tensor& x) override {
    const std::vector<int64_t> dims = {0, 2};  // images and positions
    const double n = static_cast<double>(x.size(0) * x.size(2));
    const at::Tensor mean = x.sum(dims) / n;
    const at::Tensor m2 = (x - mean.view({1, -1, 1})).square().sum(dims).to(torch::kFloat64);
    const at::Tensor mean_d = mean.to(torch::kFloat64);
    if (!mean_.defined()) {
      mean_ = mean_d;
      m2_ = m2;
      count_ = n;
      return;
    }
    const double total = count_ + n;
    const at::Tensor delta = mean_d - mean_;
    mean_ = mean_ + delta * (n / total);
    m2_ = m2_ + m2 + delta.square() * (count_ * n / total);
    count_ = total;
  }
  at::Tensor result() const override { return (m2_ / std::max(count_, 1.0)).clamp_min(0); }

 private:
  at::Tensor mean_, m2_;  // {channels} float64; m2_: summed squared deviations from mean_
  double count_ = 0;
};

}  // namespace

Scores act_var_scores(const CriterionInput& in) {
  return activation_scores(in, /*any_activation=*/true,
                           [] { return std::make_unique<Variance>(); });
}

}  // namespace tightfit::policies::criteria
