#include "graph/builder.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "core/errors.h"

namespace tightfit::graph {

namespace {

/// Kaiming-normal (fan_out for conv, as torchvision initializes ResNets), gain sqrt(2).
void fill_kaiming(Tensor& w, int64_t fan, std::mt19937_64& rng) {
  std::normal_distribution<float> dist(0.0f, static_cast<float>(std::sqrt(2.0 / fan)));
  for (float& v : w.data) v = dist(rng);
}

/// PyTorch's default linear init: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), bias alike.
void fill_linear(Tensor& w, Tensor* bias, std::mt19937_64& rng) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(w.shape.at(1)));
  std::uniform_real_distribution<float> dist(-bound, bound);
  for (float& v : w.data) v = dist(rng);
  if (bias)
    for (float& v : bias->data) v = dist(rng);
}

int64_t conv_fan_out(const Node& n) {
  return n.attrs.out_channels / n.attrs.groups * n.attrs.kernel.at(0) * n.attrs.kernel.at(1);
}

}  // namespace

void reinitialize(Network& net, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int id = 0; id < net.size(); ++id) {
    Node& n = net.node(id);
    auto param = [&](const char* name) {
      auto it = n.params.find(name);
      return it == n.params.end() ? nullptr : &it->second;
    };
    if (n.op == OpKind::kConv2d) {
      fill_kaiming(n.params.at("weight"), conv_fan_out(n), rng);
      if (Tensor* b = param("bias")) std::fill(b->data.begin(), b->data.end(), 0.0f);
    } else if (n.op == OpKind::kLinear) {
      fill_linear(n.params.at("weight"), param("bias"), rng);
    } else if (n.op == OpKind::kBatchNorm) {
      for (const char* name : {"weight", "running_var"})
        std::fill(n.params.at(name).data.begin(), n.params.at(name).data.end(), 1.0f);
      for (const char* name : {"bias", "running_mean"})
        std::fill(n.params.at(name).data.begin(), n.params.at(name).data.end(), 0.0f);
    }
  }
}

Builder::Builder(Shape input_shape, uint64_t seed) : net_(input_shape), rng_(seed) {
  shapes_.push_back(std::move(input_shape));
}

int Builder::push(Node node) {
  std::vector<Shape> in;
  for (int j : node.inputs) in.push_back(shapes_.at(j));
  Shape out = infer_node_shape(node, in);
  const int id = net_.add(std::move(node));
  shapes_.push_back(std::move(out));
  return id;
}

int Builder::conv(const std::string& name, int x, int64_t out_channels, int64_t kernel,
                  int64_t stride, int64_t padding, int64_t groups, bool bias, int64_t dilation) {
  Node n;
  n.name = name;
  n.op = OpKind::kConv2d;
  n.inputs = {x};
  Attrs& a = n.attrs;
  a.in_channels = channels(x);
  a.out_channels = out_channels;
  a.kernel = {kernel, kernel};
  a.stride = {stride, stride};
  const int64_t pad = padding < 0 ? (kernel / 2) * dilation : padding;
  a.padding = {pad, pad};
  a.dilation = {dilation, dilation};
  a.groups = groups;
  a.bias = bias;
  TIGHTFIT_CHECK(groups > 0 && a.in_channels % groups == 0, name << ": bad groups");
  Tensor w({out_channels, a.in_channels / groups, kernel, kernel});
  fill_kaiming(w, conv_fan_out(n), rng_);
  n.params["weight"] = std::move(w);
  if (bias) n.params["bias"] = Tensor({out_channels}, 0.0f);
  return push(std::move(n));
}

int Builder::batch_norm(const std::string& name, int x, double eps, double momentum) {
  Node n;
  n.name = name;
  n.op = OpKind::kBatchNorm;
  n.inputs = {x};
  n.attrs.eps = eps;
  n.attrs.momentum = momentum;
  const int64_t c = channels(x);
  n.params["weight"] = Tensor({c}, 1.0f);
  n.params["bias"] = Tensor({c}, 0.0f);
  n.params["running_mean"] = Tensor({c}, 0.0f);
  n.params["running_var"] = Tensor({c}, 1.0f);
  return push(std::move(n));
}

namespace {
Node simple(const std::string& name, OpKind op, std::vector<int> inputs) {
  Node n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(inputs);
  return n;
}
}  // namespace

int Builder::relu(const std::string& name, int x) { return push(simple(name, OpKind::kReLU, {x})); }
int Builder::relu6(const std::string& name, int x) {
  return push(simple(name, OpKind::kReLU6, {x}));
}
int Builder::hardswish(const std::string& name, int x) {
  return push(simple(name, OpKind::kHardswish, {x}));
}
int Builder::add(const std::string& name, int a, int b) {
  return push(simple(name, OpKind::kAdd, {a, b}));
}
int Builder::concat(const std::string& name, const std::vector<int>& xs) {
  return push(simple(name, OpKind::kConcat, xs));
}

namespace {
Node pool(const std::string& name, OpKind op, int x, int64_t kernel, int64_t stride,
          int64_t padding) {
  Node n = simple(name, op, {x});
  n.attrs.kernel = {kernel, kernel};
  n.attrs.stride = {stride, stride};
  n.attrs.padding = {padding, padding};
  return n;
}
}  // namespace

int Builder::max_pool(const std::string& name, int x, int64_t kernel, int64_t stride,
                      int64_t padding) {
  return push(pool(name, OpKind::kMaxPool, x, kernel, stride, padding));
}

int Builder::avg_pool(const std::string& name, int x, int64_t kernel, int64_t stride,
                      int64_t padding) {
  return push(pool(name, OpKind::kAvgPool, x, kernel, stride, padding));
}

int Builder::adaptive_avg_pool(const std::string& name, int x, int64_t out_h, int64_t out_w) {
  Node n = simple(name, OpKind::kAdaptiveAvgPool, {x});
  n.attrs.output_size = {out_h, out_w};
  return push(std::move(n));
}

int Builder::flatten(const std::string& name, int x) {
  return push(simple(name, OpKind::kFlatten, {x}));
}

int Builder::linear(const std::string& name, int x, int64_t out_features, bool bias) {
  Node n = simple(name, OpKind::kLinear, {x});
  const int64_t in_features = shapes_.at(x).at(0);
  n.attrs.in_channels = in_features;
  n.attrs.out_channels = out_features;
  n.attrs.bias = bias;
  Tensor w({out_features, in_features});
  std::optional<Tensor> b;
  if (bias) b = Tensor({out_features});
  fill_linear(w, b ? &*b : nullptr, rng_);
  n.params["weight"] = std::move(w);
  if (b) n.params["bias"] = std::move(*b);
  return push(std::move(n));
}

int Builder::dropout(const std::string& name, int x, double p) {
  Node n = simple(name, OpKind::kDropout, {x});
  n.attrs.p = p;
  return push(std::move(n));
}

int Builder::conv_bn_act(const std::string& prefix, int x, int64_t out_channels, int64_t kernel,
                         int64_t stride, Act act, int64_t groups) {
  int y = conv(prefix + ".conv", x, out_channels, kernel, stride, -1, groups);
  y = batch_norm(prefix + ".bn", y);
  switch (act) {
    case Act::kNone:
      return y;
    case Act::kReLU:
      return relu(prefix + ".relu", y);
    case Act::kReLU6:
      return relu6(prefix + ".relu6", y);
    case Act::kHardswish:
      return hardswish(prefix + ".hardswish", y);
  }
  return y;
}

Network Builder::finish(int output) {
  net_.set_output(output);
  return std::move(net_);
}

}  // namespace tightfit::graph
