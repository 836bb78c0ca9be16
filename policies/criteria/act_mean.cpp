// act_mean: the mean activation of each channel (Polyak & Wolf 2015, "Channel-Level
// Acceleration of Deep Face Representations").
//
// A channel whose activation is small on average over the data contributes little to the next
// layer. The mean is taken over every calibration image and position after the group's
// activation-function members (averaged over them when a residual stage has several), or of its
// last member when it has none.
//
// The mean is of |x|: after ReLU/ReLU6 that is the plain mean (outputs are >= 0), and for a
// group without activation (MobileNetV2's linear bottlenecks, whose BN outputs average to about
// beta whatever the channel does) it still measures how much signal the channel carries.

#include <torch/torch.h>

#include <algorithm>
#include <memory>

#include "policies/criteria/criteria.h"

namespace tightfit::policies::criteria {

namespace {

class MeanAbs : public ActivationStat {
 public:
  void add(const at::Tensor& x) override {
    // Per-batch sums in float32 (cascade summation), accumulated in double.
    const at::Tensor s = x.abs().sum(std::vector<int64_t>{0, 2}).to(torch::kFloat64);
    sum_ = sum_.defined() ? sum_ + s : s;
    count_ += static_cast<double>(x.size(0) * x.size(2));
  }
  at::Tensor result() const override { return sum_ / std::max(count_, 1.0); }

 private:
  at::Tensor sum_;  // {channels} float64
  double count_ = 0;
};

}  // namespace

Scores act_mean_scores(const CriterionInput& in) {
  return activation_scores(in, /*any_activation=*/true, [] { return std::make_unique<MeanAbs>(); });
}

}  // namespace tightfit::policies::criteria
