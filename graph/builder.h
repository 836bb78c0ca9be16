#pragma once
// Builder: appends layers to a Network with shape checking and seeded initialization
// (Kaiming-normal convolution and linear weights, BN weight 1 / bias 0), so zoo models read like
// their PyTorch definitions.

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "graph/network.h"

namespace tightfit::graph {

class Builder {
 public:
  Builder(Shape input_shape, uint64_t seed);

  int input() const { return 0; }
  /// Output shape of node `id`.
  const Shape& shape(int id) const { return shapes_.at(id); }
  int64_t channels(int id) const { return shapes_.at(id).at(0); }

  /// 2-D convolution; padding < 0 means "same" for odd kernels (kernel/2 * dilation).
  int conv(const std::string& name, int x, int64_t out_channels, int64_t kernel, int64_t stride = 1,
           int64_t padding = -1, int64_t groups = 1, bool bias = false, int64_t dilation = 1);
  int batch_norm(const std::string& name, int x, double eps = 1e-5, double momentum = 0.1);
  int relu(const std::string& name, int x);
  int relu6(const std::string& name, int x);
  int hardswish(const std::string& name, int x);
  int add(const std::string& name, int a, int b);
  int concat(const std::string& name, const std::vector<int>& xs);
  int max_pool(const std::string& name, int x, int64_t kernel, int64_t stride, int64_t padding = 0);
  int avg_pool(const std::string& name, int x, int64_t kernel, int64_t stride, int64_t padding = 0);
  int adaptive_avg_pool(const std::string& name, int x, int64_t out_h = 1, int64_t out_w = 1);
  int flatten(const std::string& name, int x);
  int linear(const std::string& name, int x, int64_t out_features, bool bias = true);
  int dropout(const std::string& name, int x, double p);

  /// conv -> batch_norm -> (relu | relu6 | none): the unit most zoo models are made of.
  enum class Act { kNone, kReLU, kReLU6, kHardswish };
  int conv_bn_act(const std::string& prefix, int x, int64_t out_channels, int64_t kernel,
                  int64_t stride, Act act, int64_t groups = 1);

  /// Finishes the network with `output` as its output node.
  Network finish(int output);

 private:
  int push(Node node);

  Network net_;
  std::vector<Shape> shapes_;
  std::mt19937_64 rng_;
};

/// Fresh weights for every layer of `net`, drawn as the Builder draws them (Kaiming-normal
/// fan-out convolutions, PyTorch's default uniform linear layers, BatchNorm at identity with
/// reset running statistics): the network as it would be before training, e.g. to train a pruned
/// architecture from scratch.
void reinitialize(Network& net, uint64_t seed);

}  // namespace tightfit::graph
