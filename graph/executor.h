#pragma once
// Executor: runs a Network with LibTorch. It copies the parameters into torch tensors once (so
// optimizers can train them with autograd) and writes them back on request. Train mode uses
// batch statistics and updates BatchNorm running statistics; eval mode uses the running ones.

#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "graph/network.h"

namespace tightfit::graph {

/// Puts a weight (dim 0 = output channels) on a quantization grid, in place.
using WeightQuantizer = std::function<void(Tensor&)>;

class Executor {
 public:
  explicit Executor(const Network& net);
  ~Executor();
  Executor(Executor&&) noexcept;
  Executor& operator=(Executor&&) noexcept;

  /// Runs the network on a batch {N, C, H, W}; returns the output node's tensor.
  at::Tensor forward(const at::Tensor& x);
  /// Same, returning every node's output (index = node id); for activation statistics and
  /// gradients of feature maps (call retain_grad() on the ones needed before backward()).
  std::vector<at::Tensor> forward_all(const at::Tensor& x);

  void train(bool on) { training_ = on; }
  /// Dropout masks in train mode come from a generator of this executor's own, seeded here,
  /// so that trainings running at once (parallel evaluators) stay reproducible. Without it they
  /// come from LibTorch's global generator.
  void seed_dropout(uint64_t seed);
  bool training() const { return training_; }

  /// Replaces the parameter `which` ("weight", "bias", "running_mean", "running_var") of node
  /// `layer` by `t`, used as given: it may carry autograd history (weights computed by another
  /// network, as a PruningNet generates them), and backward() through forward() reaches whatever
  /// produced it. Masks and weight bits of constrain_weights still apply on top. In train mode
  /// BatchNorm updates supplied running statistics in place. Throws InputError on an unknown
  /// layer, a parameter the layer does not have, or a shape other than the node's.
  void set_parameter(const std::string& layer, const std::string& which, const at::Tensor& t);

  /// The tensors forward() uses for conv/linear weight and bias and BN weight and bias:
  /// requires_grad set on the executor's own copies; supplied ones (set_parameter) as given.
  std::vector<at::Tensor> parameters();

  /// Starts BatchNorm recalibration: running statistics are reset and every following
  /// forward() in train mode adds its batch statistics to a cumulative (equal-weight) average.
  void begin_bn_recalibration();
  /// Ends recalibration: BN momentum returns to each node's own value.
  void end_bn_recalibration();

  /// Fine-tuning a compressed network: `masks` (layer -> 0/1 tensor shaped like its weight) keep
  /// pruned weights at zero — the forward pass multiplies by the mask, so they get no gradient
  /// either; `weight_bits` (layer -> bits < 32) fake-quantize weights in every forward pass
  /// (per output channel, symmetric) with a straight-through gradient to the float weights;
  /// `quantizers` (layer -> any grid: k-means, pow2, binary ...) do the same with their own grid
  /// instead, on a copy of the masked weight in every forward pass, masked again after.
  /// write_back() then writes the masked, quantized weights. Unknown layer names are InputErrors.
  void constrain_weights(const std::map<std::string, Tensor>& masks,
                         const std::map<std::string, int>& weight_bits,
                         const std::map<std::string, WeightQuantizer>& quantizers = {});

  /// Copies the current parameters and running statistics back into `net` (same structure).
  void write_back(Network& net) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool training_ = false;
};

/// Activation node `op` (is_activation) applied to `x`, as every LibTorch backend computes it.
at::Tensor activation(OpKind op, const at::Tensor& x);
/// PyTorch's channel shuffle of an N x C x H x W tensor: output channel j*g + k is input channel
/// k*(C/g) + j.
at::Tensor channel_shuffle(const at::Tensor& x, int64_t groups);

/// Converts between graph tensors and torch tensors (always copies).
at::Tensor to_torch(const Tensor& t);
Tensor from_torch(const at::Tensor& t);

}  // namespace tightfit::graph
