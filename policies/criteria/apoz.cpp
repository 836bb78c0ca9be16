// apoz: the average percentage of zeros of each channel's activation (Hu et al. 2016, "Network
// Trimming: A Data-Driven Neuron Pruning Approach towards Efficient Deep Architectures").
//
// A channel that a ReLU zeroes for most images and positions passes little to the next layer.
// The APoZ of a channel is the share of zeros in its outputs after the group's ReLU/ReLU6
// members, over every calibration image and position; the score is 1 - APoZ (fewer zeros = more
// important), averaged over the group's activation members (a residual stage has one ReLU per
// block). A group without a ReLU (MobileNetV2's linear bottlenecks) uses the share of values
// <= 0 of its last member: the same count as if a ReLU followed.

#include <torch/torch.h>

#include <algorithm>
#include <memory>

#include "policies/criteria/criteria.h"

namespace tightfit::policies::criteria {

namespace {

/// Share of positive values per channel (= 1 - APoZ).
class PositiveShare : public ActivationStat {
 public:
  void add(const at::Tensor& x) override {
    // sign() then clamp: 1 for positive values, 0 for the rest; a few times faster than
    // summing a boolean mask, which LibTorch widens to int64.
    at::Tensor positive = x.sign().clamp_min_(0).sum(std::vector<int64_t>{0, 2});
    positive_ = positive_.defined() ? positive_ + positive.to(torch::kFloat64)
                                    : positive.to(torch::kFloat64);
    count_ += static_cast<double>(x.size(0) * x.size(2));
  }
  at::Tensor result() const override { return positive_ / std::max(count_, 1.0); }

 private:
  at::Tensor positive_;  // {channels} float64
  double count_ = 0;     // values per channel seen
};

}  // namespace

Scores apoz_scores(const CriterionInput& in) {
  return activation_scores(in, /*any_activation=*/false,
                           [] { return std::make_unique<PositiveShare>(); });
}

}  // namespace tightfit::policies::criteria
