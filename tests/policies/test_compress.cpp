// Applying policies: the identity policy changes nothing (invariant 1), random policies on every
// zoo model give networks that run with the shapes inference predicts and no empty layer
// (invariant 2), pruning keeps the filters of largest L1 norm, the quantizer is per-channel
// symmetric, size accounting matches a hand count, and bad policies are ConfigErrors.

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/errors.h"
#include "graph/builder.h"
#include "graph/channels.h"
#include "graph/executor.h"
#include "graph/network.h"
#include "graph/serialize.h"
#include "models/zoo.h"
#include "policies/compress.h"
#include "policies/importance.h"
#include "policies/policy.h"

using tightfit::ConfigError;
using tightfit::graph::Builder;
using tightfit::graph::Executor;
using tightfit::graph::infer_shapes;
using tightfit::graph::Network;
using tightfit::graph::Node;
using tightfit::graph::OpKind;
using tightfit::graph::Shape;
using tightfit::graph::Tensor;
using tightfit::graph::to_torch;
using tightfit::models::default_options;
using tightfit::models::make_model;
using tightfit::models::ZooOptions;
using tightfit::policies::apply;
using tightfit::policies::ApplyOptions;
using tightfit::policies::channels_to_keep;
using tightfit::policies::CompressedNetwork;
using tightfit::policies::decision_points;
using tightfit::policies::DecisionPoints;
using tightfit::policies::fake_quantize_per_channel;
using tightfit::policies::Policy;
using tightfit::policies::size_bytes;

namespace {

const std::vector<std::string> kSmallModels = {"vgg_small", "resnet8", "resnet20",
                                               "mobilenetv2_small"};

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a - b).abs().max().item<double>();
}

at::Tensor random_input(const Network& net, int64_t batch, uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<int64_t> shape = {batch};
  shape.insert(shape.end(), net.input_shape().begin(), net.input_shape().end());
  return torch::randn(shape);
}

at::Tensor run_eval(const Network& net, const at::Tensor& x) {
  torch::NoGradGuard no_grad;
  Executor ex(net);
  return ex.forward(x);
}

/// An independent eval-mode interpreter that keeps every node's value, so that each
/// intermediate tensor can be checked against shape inference (Executor returns only the output).
std::vector<at::Tensor> forward_all(const Network& net, const at::Tensor& x) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> v(static_cast<size_t>(net.size()));
  v[0] = x;
  for (int i = 1; i < net.size(); ++i) {
    const Node& n = net.node(i);
    const auto& a = n.attrs;
    const at::Tensor& in = v[n.inputs.at(0)];
    auto p = [&](const char* key) {
      auto it = n.params.find(key);
      return it == n.params.end() ? at::Tensor() : to_torch(it->second);
    };
    switch (n.op) {
      case OpKind::kInput:
        FAIL("input node at " << i);
        break;
      case OpKind::kConv2d:
        v[i] = torch::nn::functional::conv2d(
            in, p("weight"),
            torch::nn::functional::Conv2dFuncOptions()
                .bias(p("bias"))
                .stride({a.stride[0], a.stride[1]})
                .padding(std::vector<int64_t>{a.padding[0], a.padding[1]})
                .dilation({a.dilation[0], a.dilation[1]})
                .groups(a.groups));
        break;
      case OpKind::kLinear:
        v[i] = torch::nn::functional::linear(in, p("weight"), p("bias"));
        break;
      case OpKind::kBatchNorm:
        v[i] = (in - p("running_mean").view({1, -1, 1, 1})) /
                   torch::sqrt(p("running_var").view({1, -1, 1, 1}) + a.eps) *
                   p("weight").view({1, -1, 1, 1}) +
               p("bias").view({1, -1, 1, 1});
        break;
      case OpKind::kReLU:
        v[i] = in.clamp_min(0);
        break;
      case OpKind::kFakeQuant:
        v[i] =
            torch::fake_quantize_per_tensor_affine(in, a.q_scale, a.q_zero_point, a.q_min, a.q_max);
        break;
      case OpKind::kReLU6:
        v[i] = torch::nn::functional::relu6(in);
        break;
      case OpKind::kHardswish:
        v[i] = in * torch::nn::functional::relu6(in + 3) / 6;
        break;
      case OpKind::kHardsigmoid:
        v[i] = torch::nn::functional::relu6(in + 3) / 6;
        break;
      case OpKind::kSigmoid:
        v[i] = 1 / (1 + torch::exp(-in));
        break;
      case OpKind::kSiLU:
        v[i] = in / (1 + torch::exp(-in));
        break;
      case OpKind::kGELU:
        v[i] = 0.5 * in * (1 + torch::erf(in / std::sqrt(2.0)));
        break;
      case OpKind::kTanh:
        v[i] = torch::tanh(in);
        break;
      case OpKind::kMul:
        v[i] = in * v[n.inputs[1]];
        break;
      case OpKind::kSlice:
        v[i] = in.narrow(1, a.begin, a.end - a.begin);
        break;
      case OpKind::kChannelShuffle: {
        // Output channel j*g + k is input channel k*(C/g) + j.
        const int64_t c = in.size(1), per = c / a.groups;
        std::vector<int64_t> order;
        for (int64_t j = 0; j < per; ++j)
          for (int64_t k = 0; k < a.groups; ++k) order.push_back(k * per + j);
        v[i] = in.index_select(1, torch::tensor(order));
        break;
      }
      case OpKind::kAdd:
        v[i] = in.clone();
        for (size_t k = 1; k < n.inputs.size(); ++k) v[i] += v[n.inputs[k]];
        break;
      case OpKind::kConcat: {
        std::vector<at::Tensor> parts;
        for (int j : n.inputs) parts.push_back(v[j]);
        v[i] = torch::cat(parts, 1);
        break;
      }
      case OpKind::kMaxPool:
        v[i] = torch::nn::functional::max_pool2d(
            in, torch::nn::functional::MaxPool2dFuncOptions({a.kernel[0], a.kernel[1]})
                    .stride({a.stride[0], a.stride[1]})
                    .padding({a.padding[0], a.padding[1]})
                    .ceil_mode(a.ceil_mode));
        break;
      case OpKind::kAvgPool:
        v[i] = torch::nn::functional::avg_pool2d(
            in, torch::nn::functional::AvgPool2dFuncOptions({a.kernel[0], a.kernel[1]})
                    .stride({a.stride[0], a.stride[1]})
                    .padding({a.padding[0], a.padding[1]})
                    .ceil_mode(a.ceil_mode));
        break;
      case OpKind::kAdaptiveAvgPool:
        v[i] = torch::nn::functional::adaptive_avg_pool2d(
            in, torch::nn::functional::AdaptiveAvgPool2dFuncOptions(
                    {a.output_size[0], a.output_size[1]}));
        break;
      case OpKind::kFlatten:
        v[i] = in.reshape({in.size(0), -1});
        break;
      case OpKind::kDropout:
        v[i] = in;
        break;
    }
  }
  return v;
}

/// A random policy: a keep fraction in (0, 1] for every channel decision point and 32 or 8 bits
/// for every layer.
Policy random_policy(const DecisionPoints& dp, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::bernoulli_distribution coin(0.5);
  Policy p;
  for (const auto& c : dp.channels) p.keep[c.id] = 1.0 - unit(rng);  // (0, 1]
  for (const auto& l : dp.layers) p.weight_bits[l.name] = coin(rng) ? 8 : 32;
  return p;
}

/// Checks invariant 2 on `c`, the result of applying `policy` to `net`; runs it when `execute`.
void check_compressed(const Network& net, const Policy& policy, const CompressedNetwork& c,
                      const DecisionPoints& dp, bool execute) {
  const std::vector<Shape> shapes = infer_shapes(c.net);
  REQUIRE(c.net.size() == net.size());
  REQUIRE(c.net.output() == net.output());
  CHECK(c.net.meta() == net.meta());
  for (int i = 0; i < net.size(); ++i) {
    const Node& n = c.net.node(i);
    REQUIRE(n.name == net.node(i).name);
    REQUIRE(n.op == net.node(i).op);
    if (tightfit::graph::has_weights(n.op)) {
      INFO("layer " << n.name);
      REQUIRE(n.attrs.out_channels >= 1);
      REQUIRE(n.attrs.in_channels >= 1);
      REQUIRE(c.weight_bits.at(n.name) == policy.weight_bits.at(n.name));
    }
    if (shapes[i].size() == 3) REQUIRE(shapes[i][0] >= 1);
  }
  // Every producer of a decision point now has exactly channels_to_keep(...) outputs.
  REQUIRE(c.kept_channels.size() == dp.channels.size());
  for (const auto& d : dp.channels) {
    const int64_t k = channels_to_keep(d.channels, policy.keep.at(d.id), 1);
    INFO("decision point " << d.id);
    REQUIRE(c.kept_channels.at(d.id) == k);
    for (const auto& layer : d.layers)
      REQUIRE(c.net.node(c.net.find(layer)).attrs.out_channels == k);
  }
  if (!execute) return;

  constexpr int64_t kBatch = 2;
  const at::Tensor x = random_input(c.net, kBatch, 17);
  const auto values = forward_all(c.net, x);
  for (int i = 0; i < c.net.size(); ++i) {
    std::vector<int64_t> expected = {kBatch};
    expected.insert(expected.end(), shapes[i].begin(), shapes[i].end());
    INFO("node " << c.net.node(i).name);
    REQUIRE(values[i].sizes() == at::IntArrayRef(expected));
  }
  const at::Tensor y = run_eval(c.net, x);
  const int64_t classes = net.node(net.output()).attrs.out_channels;
  REQUIRE(y.sizes() == at::IntArrayRef({kBatch, classes}));
  const at::Tensor& ref = values[c.net.output()];
  REQUIRE(max_abs_diff(y, ref) <= 1e-4 * (1.0 + ref.abs().max().item<double>()));
}

/// Applies `policies` random policies to `net` and runs the first `execute` of them.
void check_random_policies(const Network& net, int policies, int execute, uint64_t seed) {
  const DecisionPoints dp = decision_points(net);
  REQUIRE_FALSE(dp.channels.empty());
  std::mt19937_64 rng(seed);
  for (int i = 0; i < policies; ++i) {
    const Policy policy = random_policy(dp, rng);
    INFO("policy " << i << ": " << policy.to_json().dump());
    const CompressedNetwork c = apply(net, policy);
    check_compressed(net, policy, c, dp, i < execute);
  }
}

Network zoo(const std::string& name) { return make_model(name, default_options(name)); }

/// ImageNet models at a reduced input size (vgg11_bn needs >= 32): same layers, less compute.
Network imagenet_zoo(const std::string& name) {
  constexpr int64_t kReducedImageSize = 64;
  return make_model(name, ZooOptions{3, kReducedImageSize, 1000, 0});
}

const Tensor& weight(const Network& net, const std::string& name) {
  return net.node(net.find(name)).params.at("weight");
}

/// Index in `original` (dim 0) of each filter of `pruned`, matched by content.
std::vector<int64_t> matching_filters(const Tensor& original, const Tensor& pruned) {
  const int64_t per = original.numel() / original.shape[0];
  std::vector<int64_t> out;
  for (int64_t k = 0; k < pruned.shape[0]; ++k)
    for (int64_t o = 0; o < original.shape[0]; ++o)
      if (std::equal(pruned.data.begin() + k * per, pruned.data.begin() + (k + 1) * per,
                     original.data.begin() + o * per)) {
        out.push_back(o);
        break;
      }
  return out;
}

std::vector<double> mean_abs_per_filter(const Tensor& w) {
  const int64_t per = w.numel() / w.shape[0];
  std::vector<double> out;
  for (int64_t o = 0; o < w.shape[0]; ++o) {
    double s = 0;
    for (int64_t k = 0; k < per; ++k) s += std::fabs(w.data[o * per + k]);
    out.push_back(s / static_cast<double>(per));
  }
  return out;
}

/// Indices of the `k` largest scores, ascending.
std::vector<int64_t> top_k(const std::vector<double>& score, int64_t k) {
  std::vector<int64_t> idx(score.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](int64_t a, int64_t b) { return score[a] > score[b]; });
  idx.resize(static_cast<size_t>(k));
  std::sort(idx.begin(), idx.end());
  return idx;
}

}  // namespace

TEST_CASE("the identity policy leaves every small zoo model's outputs unchanged",
          "[policies][compress]") {
  for (const auto& name : kSmallModels) {
    INFO("model " << name);
    const Network net = zoo(name);
    const DecisionPoints dp = decision_points(net);
    Policy full;
    for (const auto& c : dp.channels) full.keep[c.id] = 1.0;
    for (const auto& l : dp.layers) full.weight_bits[l.name] = 32;
    CHECK(full.key().empty());
    const at::Tensor x = random_input(net, 3, 1);
    const at::Tensor y = run_eval(net, x);
    for (const Policy& policy : {Policy{}, full}) {
      const CompressedNetwork c = apply(net, policy);
      CHECK(c.net.num_params() == net.num_params());
      CHECK(max_abs_diff(run_eval(c.net, x), y) < 1e-5);
      for (const auto& [layer, bits] : c.weight_bits) CHECK(bits == 32);
      for (const auto& d : dp.channels) CHECK(c.kept_channels.at(d.id) == d.channels);
    }
  }
}

TEST_CASE("the identity policy changes nothing with a channel multiple either",
          "[policies][compress]") {
  // Groups of 10 and 12 channels, rounded to multiples of 8 when pruned.
  Builder b({3, 8, 8}, 2);
  int x = b.relu("r", b.batch_norm("bn", b.conv("a", b.input(), 10, 3)));
  x = b.conv("b", x, 12, 3);
  x = b.flatten("flat", b.adaptive_avg_pool("gap", x));
  const Network net = b.finish(b.linear("fc", x, 4));
  ApplyOptions opts;
  opts.channel_multiple = 8;
  const CompressedNetwork c = apply(net, Policy{}, opts);
  CHECK(c.kept_channels.at("a") == 10);
  CHECK(c.kept_channels.at("b") == 12);
  CHECK(c.net.num_params() == net.num_params());
  const at::Tensor in = random_input(net, 2, 3);
  CHECK(max_abs_diff(run_eval(c.net, in), run_eval(net, in)) < 1e-5);

  Policy half;
  half.keep["a"] = 0.5;
  CHECK(apply(net, half, opts).kept_channels.at("a") == 8);  // 5 rounds to the multiple 8
}

TEST_CASE("channels_to_keep rounds, respects the multiple and never reaches zero",
          "[policies][compress]") {
  CHECK(channels_to_keep(16, 1.0, 1) == 16);
  CHECK(channels_to_keep(16, 0.5, 1) == 8);
  CHECK(channels_to_keep(16, 0.3, 1) == 5);   // 4.8 rounds to 5
  CHECK(channels_to_keep(16, 0.01, 1) == 1);  // never zero
  CHECK(channels_to_keep(1, 0.01, 1) == 1);
  CHECK(channels_to_keep(64, 0.3, 8) == 16);  // 19.2 -> 19 -> nearest multiple of 8
  CHECK(channels_to_keep(64, 0.01, 8) == 8);  // never below the multiple
  CHECK(channels_to_keep(4, 0.01, 8) == 4);   // ... unless the group is smaller
  CHECK(channels_to_keep(10, 1.0, 8) == 10);  // keeping all is always allowed
  CHECK(channels_to_keep(12, 1.0, 8) == 12);
  CHECK(channels_to_keep(64, 0.5, 0) == 32);  // multiple < 1 means 1
}

TEST_CASE("random policies on the small zoo models run with the inferred shapes",
          "[policies][compress][random]") {
  constexpr int kPolicies = 200;
  uint64_t seed = 100;
  for (const std::string name :
       {"vgg_small", "resnet8", "resnet14", "resnet20", "mobilenetv2_small"}) {
    INFO("model " << name);
    check_random_policies(zoo(name), kPolicies, kPolicies, seed++);
  }
}

TEST_CASE("random policies on the ImageNet zoo models (a few)", "[policies][compress][random]") {
  // The full 200 per model are in the [slow] case below; a few here keep every model covered
  // by the default run.
  constexpr int kPolicies = 3;
  uint64_t seed = 200;
  for (const std::string name : {"resnet18", "resnet50", "mobilenetv2", "vgg11_bn"}) {
    INFO("model " << name);
    check_random_policies(imagenet_zoo(name), kPolicies, kPolicies, seed++);
  }
}

TEST_CASE("200 random policies on the ImageNet zoo models", "[policies][compress][random][slow]") {
  constexpr int kPolicies = 200;
  constexpr int kExecuted = 10;
  uint64_t seed = 300;
  for (const std::string name : {"resnet18", "resnet50", "mobilenetv2", "vgg11_bn"}) {
    INFO("model " << name);
    check_random_policies(imagenet_zoo(name), kPolicies, kExecuted, seed++);
  }
}

TEST_CASE("pruning keeps the filters with the largest L1 norms", "[policies][compress]") {
  SECTION("one producer") {
    Builder b({2, 6, 6}, 9);
    const int a = b.relu("r", b.conv("a", b.input(), 8, 3));
    const Network net = b.finish(b.conv("b", a, 3, 1));
    const auto norms = mean_abs_per_filter(weight(net, "a"));
    for (const double keep : {0.75, 0.5, 0.25, 0.125}) {
      Policy policy;
      policy.keep["a"] = keep;
      const CompressedNetwork c = apply(net, policy);
      const int64_t k = channels_to_keep(8, keep, 1);
      INFO("keep " << keep);
      CHECK(matching_filters(weight(net, "a"), weight(c.net, "a")) == top_k(norms, k));
      // The consumer lost the matching input channels.
      CHECK(weight(c.net, "b").shape == Shape{3, k, 1, 1});
    }
  }
  SECTION("ties keep the lower index") {
    Builder b({1, 4, 4}, 1);
    Network net = b.finish(b.conv("b", b.conv("a", b.input(), 4, 1), 2, 1));
    Tensor& w = net.node(net.find("a")).params.at("weight");
    w.data = {1.0f, -2.0f, 2.0f, -1.0f};  // |w|: 1, 2, 2, 1
    Policy policy;
    policy.keep["a"] = 0.25;
    CHECK(weight(apply(net, policy).net, "a").data == std::vector<float>{-2.0f});
    policy.keep["a"] = 0.75;
    CHECK(weight(apply(net, policy).net, "a").data == std::vector<float>{1.0f, -2.0f, 2.0f});
  }
  SECTION("residual-coupled layers rank by their summed, per-weight-normalized L1 norm") {
    Builder b({3, 6, 6}, 4);
    const int p = b.conv("p", b.input(), 6, 3);
    const int q = b.conv("q", b.input(), 6, 1);
    const Network net = b.finish(b.conv("out", b.relu("r", b.add("sum", p, q)), 2, 1));
    const auto np = mean_abs_per_filter(weight(net, "p"));
    const auto nq = mean_abs_per_filter(weight(net, "q"));
    std::vector<double> sum(6);
    for (size_t i = 0; i < 6; ++i) sum[i] = np[i] + nq[i];
    Policy policy;
    policy.keep["p"] = 0.5;
    const CompressedNetwork c = apply(net, policy);
    const auto expected = top_k(sum, 3);
    CHECK(matching_filters(weight(net, "p"), weight(c.net, "p")) == expected);
    CHECK(matching_filters(weight(net, "q"), weight(c.net, "q")) == expected);
  }
}

TEST_CASE("fake_quantize_per_channel is symmetric per output channel", "[policies][quantize]") {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Tensor w({6, 4, 3, 3});
  const int64_t per = 4 * 3 * 3;
  for (int64_t o = 0; o < 6; ++o)  // channels of very different ranges
    for (int64_t k = 0; k < per; ++k) w.data[o * per + k] = normal(rng) * std::pow(10.0f, o - 3);
  std::fill_n(w.data.begin() + 2 * per, per, 0.0f);  // an all-zero channel

  auto max_error = [&](int bits) {
    Tensor q = w;
    fake_quantize_per_channel(q, bits);
    REQUIRE(q.shape == w.shape);
    double worst = 0;  // relative to each channel's range
    for (int64_t o = 0; o < 6; ++o) {
      float amax = 0;
      for (int64_t k = 0; k < per; ++k) amax = std::max(amax, std::fabs(w.data[o * per + k]));
      std::set<float> distinct;
      for (int64_t k = 0; k < per; ++k) {
        const float v = q.data[o * per + k];
        distinct.insert(v);
        REQUIRE(std::fabs(v) <= amax * (1 + 1e-6f));
        if (amax > 0) worst = std::max<double>(worst, std::fabs(v - w.data[o * per + k]) / amax);
      }
      CHECK(distinct.size() <= static_cast<size_t>((1 << bits) - 1));
      if (amax == 0) CHECK(distinct == std::set<float>{0.0f});
    }
    return worst;
  };
  const double e8 = max_error(8);
  const double e4 = max_error(4);
  // Round to nearest: at most half a step of amax / (2^(bits-1) - 1).
  CHECK(e8 <= 0.5 / 127 + 1e-6);
  CHECK(e4 <= 0.5 / 7 + 1e-6);
  CHECK(e8 > 0);
  CHECK(e8 < e4);

  // The largest magnitude of each channel is representable exactly (up to float rounding).
  Tensor q = w;
  fake_quantize_per_channel(q, 8);
  for (int64_t o : {0, 3, 5}) {
    const auto first = w.data.begin() + o * per;
    const auto it = std::max_element(first, first + per,
                                     [](float a, float b) { return std::fabs(a) < std::fabs(b); });
    CHECK(q.data[it - w.data.begin()] == Approx(*it).epsilon(1e-6));
  }
}

TEST_CASE("8-bit layers of an applied policy hold at most 255 values per channel",
          "[policies][quantize]") {
  const Network net = zoo("resnet8");
  Policy policy;
  policy.weight_bits["layer1.0.conv1"] = 8;
  const CompressedNetwork c = apply(net, policy);
  CHECK(c.weight_bits.at("layer1.0.conv1") == 8);
  CHECK(c.weight_bits.at("layer1.0.conv2") == 32);
  CHECK(weight(c.net, "layer1.0.conv2").data == weight(net, "layer1.0.conv2").data);
  const Tensor& q = weight(c.net, "layer1.0.conv1");
  CHECK(q.data != weight(net, "layer1.0.conv1").data);
  const int64_t per = q.numel() / q.shape[0];
  for (int64_t o = 0; o < q.shape[0]; ++o) {
    const std::set<float> distinct(q.data.begin() + o * per, q.data.begin() + (o + 1) * per);
    CHECK(distinct.size() <= 255);
  }
}

TEST_CASE("size_bytes matches a hand count", "[policies][size]") {
  // conv 3->4 k3 (no bias), batch norm, global pool, linear 4->2 (with bias).
  Builder b({3, 8, 8}, 1);
  const int x = b.batch_norm("bn", b.conv("conv", b.input(), 4, 3));
  const Network net = b.finish(b.linear("fc", b.flatten("flat", b.adaptive_avg_pool("gap", x)), 2));

  constexpr int64_t kConvWeights = 4 * 3 * 3 * 3;  // 108
  constexpr int64_t kBnValues = 4 * 4;             // weight, bias, running mean and variance
  constexpr int64_t kFcWeights = 2 * 4, kFcBias = 2;
  // fp32: everything at 4 bytes.
  CHECK(size_bytes(apply(net, Policy{})) == 4 * (kConvWeights + kBnValues + kFcWeights + kFcBias));
  CHECK(size_bytes(apply(net, Policy{})) == 536);

  // 8-bit weights: one byte each plus one fp32 scale per output channel; bias and BN stay fp32.
  Policy int8;
  int8.weight_bits = {{"conv", 8}, {"fc", 8}};
  CHECK(size_bytes(apply(net, int8)) ==
        (kConvWeights + 4 * 4) + 4 * kBnValues + (kFcWeights + 2 * 4) + 4 * kFcBias);
  CHECK(size_bytes(apply(net, int8)) == 212);

  // Half the conv's channels: 2 filters, 2 BN channels, 2 fc input features.
  Policy pruned;
  pruned.keep["conv"] = 0.5;
  CHECK(size_bytes(apply(net, pruned)) == 4 * (2 * 27 + 2 * 4 + 2 * 2 + 2));
}

TEST_CASE("invalid policies are ConfigErrors that say what is valid", "[policies][validate]") {
  const Network net = zoo("resnet8");
  auto require_invalid = [&](const Policy& p, const std::vector<std::string>& parts) {
    REQUIRE_THROWS_AS(apply(net, p), ConfigError);
    try {
      tightfit::policies::validate(p, net);
    } catch (const ConfigError& e) {
      for (const auto& part : parts) CHECK_THAT(e.what(), Catch::Contains(part));
    }
  };
  Policy unknown;
  unknown.keep["layer9.conv1"] = 0.5;
  require_invalid(unknown, {"'layer9.conv1'", "valid", "conv1", "layer1.0.conv1"});
  // The classifier output is a layer but not a channel decision point.
  Policy fixed;
  fixed.keep["fc"] = 0.5;
  require_invalid(fixed, {"'fc'", "not a channel decision point"});
  for (const double bad : {0.0, -0.5, 1.5}) {
    Policy p;
    p.keep["conv1"] = bad;
    INFO("keep " << bad);
    require_invalid(p, {"'conv1'", "(0, 1]"});
  }
  Policy nan;
  nan.keep["conv1"] = std::nan("");
  require_invalid(nan, {"(0, 1]"});
  Policy bits;
  bits.weight_bits["fc"] = 5;
  require_invalid(bits, {"'fc'", "5", "valid values: 32, 16, 8"});
  Policy bad_layer;
  bad_layer.weight_bits["bn1"] = 8;
  require_invalid(bad_layer, {"'bn1'", "not a conv/linear layer", "valid"});
  // The boundary values are accepted.
  Policy ok;
  ok.keep["conv1"] = 1.0;
  ok.keep["layer1.0.conv1"] = 1e-9;
  ok.weight_bits["fc"] = 8;
  CHECK_NOTHROW(tightfit::policies::validate(ok, net));
}

TEST_CASE("policies round-trip through JSON and reject unknown keys", "[policies][json]") {
  Policy p;
  p.keep = {{"conv1", 0.5}, {"layer2.0.conv2", 0.125}, {"layer1.0.conv1", 1.0}};
  p.weight_bits = {{"fc", 8}, {"conv1", 32}};
  const auto text = p.to_json().dump();
  const Policy q = Policy::from_json(nlohmann::json::parse(text));
  CHECK(q.keep == p.keep);
  CHECK(q.weight_bits == p.weight_bits);
  CHECK(q.key() == p.key());
  // The key ignores decisions that compress nothing.
  CHECK(p.key() == "k:conv1=0.5;k:layer2.0.conv2=0.125;b:fc=8;");
  CHECK(Policy::from_json(nlohmann::json::object()).keep.empty());

  const auto bad = nlohmann::json::parse(R"({"keep": {}, "bits": {}})");
  REQUIRE_THROWS_AS(Policy::from_json(bad, "best.json"), ConfigError);
  REQUIRE_THROWS_WITH(Policy::from_json(bad, "best.json"),
                      Catch::Contains("unknown key 'bits' in best.json") &&
                          Catch::Contains("keep, keep_count, weight_bits"));
  REQUIRE_THROWS_WITH(Policy::from_json(nlohmann::json::parse(R"({"keep": {"a": "x"}})")),
                      Catch::Contains("policy.keep.a must be a fraction in (0, 1]"));
  REQUIRE_THROWS_WITH(Policy::from_json(nlohmann::json::parse(R"({"weight_bits": {"a": 8.5}})")),
                      Catch::Contains("policy.weight_bits.a must be an integer"));
  REQUIRE_THROWS_WITH(Policy::from_json(nlohmann::json::parse(R"({"keep": [1]})")),
                      Catch::Contains("policy.keep must be an object"));
  REQUIRE_THROWS_AS(Policy::from_json(nlohmann::json::array()), ConfigError);
}

TEST_CASE("decision points list prunable groups and every weighted layer", "[policies]") {
  const Network net = zoo("resnet8");
  const DecisionPoints dp = decision_points(net);
  // stem group (conv1 + layer1.0.conv2), 3 inner conv1 groups, stages 2 and 3 with projections
  CHECK(dp.channels.size() == 6);
  CHECK(dp.channels.front().id == "conv1");
  CHECK(dp.channels.front().layers == std::vector<std::string>{"conv1", "layer1.0.conv2"});
  CHECK(dp.channels.front().channels == 16);
  // 7 convs in the blocks and stem, 2 projections, fc
  CHECK(dp.layers.size() == 10);
  CHECK(dp.layers.back().name == "fc");
  CHECK(dp.layers.back().op == "linear");
  CHECK(dp.layers.back().weight_params == 64 * 10);
}

namespace {

tightfit::policies::Calibration random_calibration(const Network& net, uint64_t seed) {
  tightfit::policies::Calibration c;
  for (int b = 0; b < 2; ++b) {
    c.images.push_back(random_input(net, 16, seed + b));
    c.labels.push_back(torch::randint(0, 10, {16}, torch::kLong));
  }
  return c;
}

double max_rel_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

}  // namespace

TEST_CASE("the identity setting of every operator reproduces the original outputs",
          "[policies][compress][identity]") {
  for (const auto& name : kSmallModels) {
    INFO("model " << name);
    const Network net = zoo(name);
    const auto calibration = random_calibration(net, 11);
    ApplyOptions opts;
    opts.calibration = &calibration;
    const DecisionPoints dp = decision_points(net);
    const at::Tensor x = random_input(net, 3, 2);
    const at::Tensor y = run_eval(net, x);
    // Keep all (by fraction and by count) with every criterion, 32-bit weights and activations,
    // zero sparsity with either scope: nothing may change.
    for (const auto& criterion : tightfit::policies::criterion_names()) {
      INFO("criterion " << criterion);
      Policy p;
      p.criterion = criterion;
      for (const auto& c : dp.channels) p.keep_count[c.id] = c.channels;
      for (const auto& l : dp.layers) {
        p.weight_bits[l.name] = 32;
        p.act_bits[l.name] = 32;
        p.sparsity[l.name] = 0.0;
      }
      for (const std::string scope : {"layer", "global"}) {
        p.sparsity_scope = scope;
        const CompressedNetwork c = apply(net, p, opts);
        CHECK(c.net.size() == net.size());
        CHECK(max_abs_diff(run_eval(c.net, x), y) < 1e-5);
        CHECK(size_bytes(c) == size_bytes(apply(net, Policy{})));
      }
    }
  }
}

TEST_CASE("full-rank factorization through apply() reproduces the outputs",
          "[policies][compress][lowrank]") {
  for (const auto& name : {"vgg_small", "resnet8"}) {
    INFO("model " << name);
    const Network net = zoo(name);
    const at::Tensor x = random_input(net, 3, 3);
    const at::Tensor y = run_eval(net, x);
    for (const std::string kind : {"tucker2", "spatial"}) {
      INFO("kind " << kind);
      Policy p;
      p.factorization.conv = kind;
      p.factorization.rank_by = "energy";
      p.factorization.allow_larger =
          true;  // full rank is always larger: allow it to test exactness
      for (const auto& l : decision_points(net).layers)
        if (l.full_rank > 0) p.rank[l.name] = 1.0;
      const CompressedNetwork c = apply(net, p);
      CHECK(c.net.size() > net.size());
      CHECK(max_rel_diff(run_eval(c.net, x), y) < 1e-4);
    }
  }
}

TEST_CASE("activation bits insert calibrated fake-quant nodes", "[policies][compress][act]") {
  const Network net = zoo("vgg_small");
  const auto calibration = random_calibration(net, 5);
  ApplyOptions opts;
  opts.calibration = &calibration;
  const at::Tensor x = random_input(net, 4, 6);
  const at::Tensor y = run_eval(net, x);
  double previous_error = 1e9;
  for (int bits : {2, 4, 8}) {
    Policy p;
    for (const auto& l : decision_points(net).layers) p.act_bits[l.name] = bits;
    const CompressedNetwork c = apply(net, p, opts);
    int quant_nodes = 0;
    for (const auto& n : c.net.nodes())
      if (n.op == OpKind::kFakeQuant) {
        ++quant_nodes;
        CHECK(n.attrs.q_max - n.attrs.q_min <= (1 << bits) - 1);
        CHECK(n.attrs.q_scale > 0);
      }
    CHECK(quant_nodes == static_cast<int>(decision_points(net).layers.size()));
    for (const auto& l : decision_points(net).layers) CHECK(c.layers.at(l.name).act_bits == bits);
    const double error = max_rel_diff(run_eval(c.net, x), y);
    CHECK(error < previous_error);  // more bits, less error
    previous_error = error;
  }
  CHECK(previous_error < 0.05);
  // Without calibration data the policy is refused, not guessed.
  Policy p;
  p.act_bits["features.0"] = 8;
  CHECK_THROWS_WITH(apply(net, p), Catch::Contains("calibration data"));
}

TEST_CASE("magnitude pruning masks the smallest weights and sizes them sparsely",
          "[policies][compress][sparsity]") {
  const Network net = zoo("vgg_small");
  Policy p;
  p.sparsity["classifier.0"] = 0.9;
  p.weight_bits["classifier.0"] = 8;
  const CompressedNetwork c = apply(net, p);
  const auto& w = c.net.node(c.net.find("classifier.0")).params.at("weight");
  const auto zeros = std::count(w.data.begin(), w.data.end(), 0.0f);
  CHECK(zeros >= static_cast<int64_t>(0.9 * w.numel()) - 1);
  // The kept weights are the largest ones of the original.
  const auto& w0 = net.node(net.find("classifier.0")).params.at("weight");
  float largest_pruned = 0, smallest_kept = 1e9f;
  for (size_t k = 0; k < w.data.size(); ++k) {
    if (w.data[k] == 0.0f)
      largest_pruned = std::max(largest_pruned, std::fabs(w0.data[k]));
    else
      smallest_kept = std::min(smallest_kept, std::fabs(w0.data[k]));
  }
  CHECK(largest_pruned <= smallest_kept);
  REQUIRE(c.masks.count("classifier.0"));
  const auto& info = c.layers.at("classifier.0");
  CHECK(info.sparsity == Approx(0.9).margin(1e-3));
  // Codes only for non-zeros at 8 bits; positions as the cheaper of bitmask and CSR.
  CHECK(info.code_bytes == (info.nonzeros * 8 + 7) / 8);
  CHECK(info.index_bytes ==
        (tightfit::policies::sparse_index_bits(128, 3136, info.nonzeros) + 7) / 8);
  CHECK(info.index_bytes <= (128 * 3136 + 7) / 8);
  // Global scope: one threshold across layers.
  Policy g;
  g.sparsity_scope = "global";
  g.sparsity["classifier.0"] = 0.5;
  g.sparsity["features.8"] = 0.5;
  const CompressedNetwork cg = apply(net, g);
  const double total = static_cast<double>(cg.layers.at("classifier.0").weights +
                                           cg.layers.at("features.8").weights);
  const double nonzero = static_cast<double>(cg.layers.at("classifier.0").nonzeros +
                                             cg.layers.at("features.8").nonzeros);
  CHECK(1.0 - nonzero / total == Approx(0.5).margin(1e-3));
  g.sparsity["features.8"] = 0.4;
  CHECK_THROWS_WITH(apply(net, g), Catch::Contains("global"));
}

TEST_CASE("the size formula equals the parameter bytes written to disk (fp32)",
          "[policies][size]") {
  const Network net = zoo("resnet8");
  Policy p;
  for (const auto& c : decision_points(net).channels) p.keep[c.id] = 0.5;
  const CompressedNetwork c = apply(net, p);
  const auto dir =
      std::filesystem::temp_directory_path() / ("tightfit_size_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "pruned.tfn").string();
  tightfit::graph::save_network(c.net, path);
  // File = magic(8) + version(4) + header length(8) + header + data length(8) + data + crc(4).
  std::ifstream in(path, std::ios::binary);
  std::string buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t header_len = 0, data_len = 0;
  std::memcpy(&header_len, buf.data() + 12, 8);
  std::memcpy(&data_len, buf.data() + 20 + header_len, 8);
  CHECK(static_cast<int64_t>(data_len) == size_bytes(c));
  CHECK(buf.size() == 20 + header_len + 8 + data_len + 4);
  std::filesystem::remove_all(dir);
}

TEST_CASE("per-point criteria, schemes and factorizations act where they are named",
          "[policies][compress][methods]") {
  // A policy that names a method for one decision point compresses that point exactly as a
  // policy with that method globally does, and every other point as the global method does.
  const auto net =
      tightfit::models::make_model("vgg_small", tightfit::models::default_options("vgg_small"));
  const auto dp = decision_points(net);
  REQUIRE(dp.channels.size() >= 2);
  // features.0 (group 0) reads the image, so its weights show its own ranking and scheme alone.
  const std::string g0 = dp.channels[0].id, g1 = dp.channels[1].id;
  const std::string l0 = dp.layers[0].name, l1 = dp.layers[1].name;
  const auto weight = [](const CompressedNetwork& c, const std::string& layer) {
    return c.net.node(c.net.find(layer)).params.at("weight").data;
  };
  const auto same_network = [&](const CompressedNetwork& x, const CompressedNetwork& y) {
    for (const auto& l : dp.layers)
      if (weight(x, l.name) != weight(y, l.name)) return false;
    return true;
  };
  Policy mixed;  // group 1 by FPGM, group 0 by the global L1
  mixed.keep = {{g0, 0.5}, {g1, 0.5}};
  mixed.criteria[g1] = "fpgm";
  Policy inverse = mixed;  // the same choice, said the other way round
  inverse.criterion = "fpgm";
  inverse.criteria = {{g0, "l1"}};
  Policy l1_everywhere = mixed;
  l1_everywhere.criteria.clear();
  const auto a = apply(net, mixed), c = apply(net, l1_everywhere);
  CHECK(same_network(a, apply(net, inverse)));
  CHECK(weight(a, l0) == weight(c, l0));  // group 0: L1 in both
  CHECK(weight(a, l1) != weight(c, l1));  // group 1: FPGM keeps other filters than L1 here
  CHECK(mixed.key() != l1_everywhere.key());
  CHECK(Policy::from_json(mixed.to_json()).key() == mixed.key());

  Policy pow2;  // layer 1 by pow2, layer 0 by the global symmetric scheme
  pow2.weight_bits = {{l0, 4}, {l1, 4}};
  pow2.schemes[l1] = "pow2";
  Policy pow2_inverse = pow2;
  pow2_inverse.quantization.scheme = "pow2";
  pow2_inverse.schemes = {{l0, "symmetric"}};
  Policy symmetric = pow2;
  symmetric.schemes.clear();
  const auto q = apply(net, pow2), s = apply(net, symmetric);
  CHECK(same_network(q, apply(net, pow2_inverse)));
  CHECK(weight(q, l0) == weight(s, l0));
  CHECK(weight(q, l1) != weight(s, l1));
  CHECK(q.layers.at(l1).scheme == "pow2");
  CHECK(q.layers.at(l0).scheme == "symmetric");

  // Factorizations: one conv by tucker2 (the global), one by spatial.
  Policy factorized;
  const std::string conv_a = dp.layers[1].name, conv_b = dp.layers[2].name;
  factorized.rank = {{conv_a, 0.5}, {conv_b, 0.25}};  // spatial at 0.5 would be no smaller
  factorized.factorizations[conv_b] = "spatial";
  const auto f = apply(net, factorized);
  REQUIRE(f.lowrank.size() == 2);
  for (const auto& r : f.lowrank) {
    CHECK(r.applied);
    CHECK(r.kind == (r.layer == conv_b ? "spatial" : "tucker2"));
  }
  CHECK(f.net.find(conv_b + ".lr0") >= 0);
  CHECK(f.net.node(f.net.find(conv_b + ".lr0")).attrs.kernel[1] == 1);  // k x 1, then 1 x k

  // Names outside the lists, points that do not exist and thinet per group are refused.
  CHECK_THROWS_WITH(Policy::from_json({{"criteria", {{g0, "bogus"}}}}),
                    Catch::Contains("criteria." + g0) && Catch::Contains("fpgm"));
  CHECK_THROWS_WITH(Policy::from_json({{"factorizations", {{l0, "cp"}}}}),
                    Catch::Contains("tucker2, spatial"));
  Policy wrong;
  wrong.criteria["no_such_group"] = "l1";
  CHECK_THROWS_WITH(tightfit::policies::validate(wrong, dp), Catch::Contains("no_such_group"));
  Policy thinet;
  thinet.criteria[g0] = "thinet";
  CHECK_THROWS_WITH(tightfit::policies::validate(thinet, dp),
                    Catch::Contains("thinet refits every pruned group"));
  Policy binary8;
  binary8.weight_bits[l0] = 8;
  binary8.schemes[l0] = "binary";
  CHECK_THROWS_AS(tightfit::policies::validate(binary8, dp), ConfigError);
}
