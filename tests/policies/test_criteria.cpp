// Channel importance criteria: each criterion ranks hand-set channels as its paper says (l1/l2
// by their norm, fpgm the filter at the median lowest, bn_scale by |gamma| at the right offset,
// the activation criteria a channel that is always zero lowest, the gradient criteria a channel
// the next layer ignores at zero, ThiNet such a channel first); thinet_refit reduces the
// consumer's reconstruction error (exactly for a duplicated channel) and the output error of
// pruned zoo models; random is seeded; every criterion gives finite scores of the right sizes
// on zoo models; unknown names and missing data are ConfigErrors, calibration batches that do
// not fit are InputErrors.

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "core/errors.h"
#include "graph/builder.h"
#include "graph/channels.h"
#include "graph/executor.h"
#include "graph/network.h"
#include "models/zoo.h"
#include "policies/calibration.h"
#include "policies/importance.h"

using tightfit::ConfigError;
using tightfit::graph::analyze_channels;
using tightfit::graph::Builder;
using tightfit::graph::ChannelAnalysis;
using tightfit::graph::Executor;
using tightfit::graph::from_torch;
using tightfit::graph::Network;
using tightfit::graph::Node;
using tightfit::graph::OpKind;
using tightfit::graph::Tensor;
using tightfit::graph::to_torch;
using tightfit::policies::Calibration;
using tightfit::policies::channel_importance;
using tightfit::policies::criterion_names;
using tightfit::policies::criterion_needs_data;
using tightfit::policies::thinet_refit;

namespace {

constexpr int64_t kClasses = 3;

/// input 1x8x8 -> conv1 (4, 3x3, bias) -> bn1 -> relu1 -> conv2 (5, 3x3) -> relu2 -> avgpool ->
/// flatten -> fc (3). Decision points: "conv1" (4 channels) and "conv2" (5 channels, no BN).
Network small_net(uint64_t seed) {
  Builder b({1, 8, 8}, seed);
  int x = b.conv("conv1", b.input(), 4, 3, 1, -1, 1, /*bias=*/true);
  x = b.batch_norm("bn1", x);
  x = b.relu("relu1", x);
  x = b.conv("conv2", x, 5, 3);
  x = b.relu("relu2", x);
  x = b.adaptive_avg_pool("avgpool", x);
  x = b.flatten("flatten", x);
  return b.finish(b.linear("fc", x, kClasses));
}

Tensor& param(Network& net, const std::string& node, const std::string& key) {
  return net.node(net.find(node)).params.at(key);
}
const Tensor& param(const Network& net, const std::string& node, const std::string& key) {
  return net.node(net.find(node)).params.at(key);
}

/// Sets output filter `o` of a conv/linear weight to `values` (its size = values per filter).
void set_filter(Tensor& w, int64_t o, const std::vector<float>& values) {
  const int64_t per = w.numel() / w.shape[0];
  REQUIRE(static_cast<int64_t>(values.size()) == per);
  std::copy(values.begin(), values.end(), w.data.begin() + o * per);
}

/// Zeroes input channel `c` of a conv weight {O, C, KH, KW}: the layer ignores that channel.
void zero_input_channel(Tensor& w, int64_t c) {
  const int64_t in = w.shape[1], k = w.shape[2] * w.shape[3];
  for (int64_t o = 0; o < w.shape[0]; ++o) std::fill_n(w.data.begin() + (o * in + c) * k, k, 0.0f);
}

Calibration random_calibration(const Network& net, int batches, int64_t batch, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<int64_t> shape = {batch};
  shape.insert(shape.end(), net.input_shape().begin(), net.input_shape().end());
  Calibration c;
  for (int i = 0; i < batches; ++i) {
    c.images.push_back(torch::randn(shape, gen, torch::kFloat32));
    c.labels.push_back(torch::randint(0, kClasses, {batch}, gen, torch::kInt64));
  }
  return c;
}

/// Scores of the group named `id`.
std::vector<double> scores_of(const std::string& criterion, const Network& net,
                              const Calibration& cal, const std::string& id, uint64_t seed = 0) {
  const ChannelAnalysis ca = analyze_channels(net);
  const int g = ca.find_group(id);
  REQUIRE(g >= 0);
  return channel_importance(criterion, net, ca, cal, seed).at(g);
}

int64_t argmin(const std::vector<double>& v) {
  return std::min_element(v.begin(), v.end()) - v.begin();
}

/// What compress does, for the tests: keeps `kept[g]` channels of each group (empty = all).
Network prune(const Network& net, const ChannelAnalysis& ca,
              const std::vector<std::vector<int64_t>>& kept) {
  Network out(net.input_shape());
  for (int i = 1; i < net.size(); ++i) {
    Node node = net.node(i);
    const bool weighted = tightfit::graph::has_weights(node.op);
    if (weighted || node.op == OpKind::kBatchNorm) {
      const auto out_idx = tightfit::graph::kept_indices(ca.layouts[i], kept);
      const auto in_idx = tightfit::graph::kept_indices(ca.layouts[node.inputs[0]], kept);
      const bool depthwise = node.op == OpKind::kConv2d && node.attrs.groups > 1;
      const at::Tensor oi = torch::tensor(out_idx, torch::kInt64);
      const at::Tensor ii = torch::tensor(in_idx, torch::kInt64);
      for (auto& [key, t] : node.params) {
        at::Tensor v = to_torch(t).index_select(0, oi);
        if (key == "weight" && weighted && !depthwise) v = v.index_select(1, ii);
        t = from_torch(v);
      }
      if (weighted) {
        node.attrs.out_channels = static_cast<int64_t>(out_idx.size());
        node.attrs.in_channels =
            depthwise ? node.attrs.out_channels : static_cast<int64_t>(in_idx.size());
        if (depthwise) node.attrs.groups = node.attrs.out_channels;
      }
    }
    out.add(std::move(node));
  }
  out.set_output(net.output());
  return out;
}

/// Every node's outputs on every calibration batch, concatenated over batches.
at::Tensor node_output(const Network& net, const std::string& node, const Calibration& cal) {
  torch::NoGradGuard no_grad;
  Executor ex(net);
  std::vector<at::Tensor> parts;
  for (const auto& x : cal.images) parts.push_back(ex.forward_all(x)[net.find(node)]);
  return torch::cat(parts, 0);
}

double squared_error(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).square().sum().item<double>();
}

}  // namespace

TEST_CASE("criteria: l1 and l2 rank filters by their own norm", "[criteria]") {
  Network net = small_net(1);
  Tensor& w = param(net, "conv1", "weight");  // {4, 1, 3, 3}
  // Filter 0: one weight of 3 (L1 3, L2 3); filter 1: nine weights of 0.5 (L1 4.5, L2 1.5).
  std::vector<float> spike(9, 0.0f);
  spike[4] = 3.0f;
  set_filter(w, 0, spike);
  set_filter(w, 1, std::vector<float>(9, 0.5f));
  set_filter(w, 2, std::vector<float>(9, 0.1f));
  set_filter(w, 3, std::vector<float>(9, -0.2f));
  const Calibration none;

  const auto l1 = scores_of("l1", net, none, "conv1");
  REQUIRE(l1.size() == 4);
  CHECK(l1[0] == Approx(3.0 / 9));  // mean |w|: divided by the filter size
  CHECK(l1[1] == Approx(0.5));
  CHECK(l1[2] == Approx(0.1));
  CHECK(l1[3] == Approx(0.2));
  CHECK(l1[1] > l1[0]);

  const auto l2 = scores_of("l2", net, none, "conv1");
  CHECK(l2[0] == Approx(1.0));  // sqrt(9 / 9): root mean square
  CHECK(l2[1] == Approx(0.5));
  CHECK(l2[0] > l2[1]);
  CHECK(l2[3] > l2[2]);
}

TEST_CASE("criteria: fpgm gives the filter at the others' geometric median the lowest score",
          "[criteria]") {
  Builder b({1, 8, 8}, 3);
  int x = b.conv("conv1", b.input(), 5, 3);
  x = b.relu("relu1", x);
  x = b.conv("conv2", x, 2, 1);
  Network net = b.finish(x);
  Tensor& w = param(net, "conv1", "weight");
  // f0 = c; f1..f4 = c +- 0.5 e1, c +- 0.5 e2: their geometric median is f0, which is not the
  // smallest filter (f2 and f4 are), so a norm criterion would choose differently.
  const std::vector<float> c(9, 1.0f);
  set_filter(w, 0, c);
  for (int k = 0; k < 4; ++k) {
    std::vector<float> f = c;
    f[k / 2] += (k % 2 == 0 ? 0.5f : -0.5f);
    set_filter(w, k + 1, f);
  }
  const auto fpgm = scores_of("fpgm", net, Calibration{}, "conv1");
  REQUIRE(fpgm.size() == 5);
  CHECK(argmin(fpgm) == 0);
  for (int k = 1; k < 5; ++k) CHECK(fpgm[k] > fpgm[0] + 1e-3);
  CHECK(argmin(scores_of("l2", net, Calibration{}, "conv1")) != 0);
}

TEST_CASE("criteria: bn_scale follows |gamma| at the group's offset, else l1", "[criteria]") {
  Network net = small_net(2);
  param(net, "bn1", "weight").data = {0.5f, -2.0f, 0.1f, 1.0f};
  const auto s = scores_of("bn_scale", net, Calibration{}, "conv1");
  REQUIRE(s.size() == 4);
  CHECK(s[0] == Approx(0.5));
  CHECK(s[1] == Approx(2.0));
  CHECK(s[2] == Approx(0.1));
  CHECK(s[3] == Approx(1.0));
  // conv2's group has no batch_norm member: l1 instead.
  CHECK(scores_of("bn_scale", net, Calibration{}, "conv2") ==
        scores_of("l1", net, Calibration{}, "conv2"));

  // Two groups concatenated before one BN: each reads its own slice of gamma.
  Builder cb({1, 8, 8}, 5);
  const int a = cb.conv("a", cb.input(), 2, 3);
  const int c = cb.conv("c", cb.input(), 3, 3);
  int y = cb.concat("cat", {a, c});
  y = cb.batch_norm("bn", y);
  y = cb.relu("relu", y);
  Network cat_net = cb.finish(cb.conv("head", y, 2, 1));
  param(cat_net, "bn", "weight").data = {1, 2, 3, 4, 5};
  CHECK(scores_of("bn_scale", cat_net, Calibration{}, "a") == std::vector<double>{1, 2});
  CHECK(scores_of("bn_scale", cat_net, Calibration{}, "c") == std::vector<double>{3, 4, 5});
}

TEST_CASE("criteria: activation statistics give a channel that is always zero the lowest score",
          "[criteria]") {
  Network net = small_net(3);
  constexpr int64_t kDead = 2;
  // Filter 0 and bias -1: after BN (running stats 0/1) and ReLU the channel is always 0.
  set_filter(param(net, "conv1", "weight"), kDead, std::vector<float>(9, 0.0f));
  param(net, "conv1", "bias").data[kDead] = -1.0f;
  const Calibration cal = random_calibration(net, 2, 16, 7);
  for (const std::string criterion : {"apoz", "act_mean", "act_var", "entropy"}) {
    INFO(criterion);
    const auto s = scores_of(criterion, net, cal, "conv1");
    REQUIRE(s.size() == 4);
    CHECK(s[kDead] == Approx(0.0).margin(1e-12));
    for (int64_t k = 0; k < 4; ++k)
      if (k != kDead) CHECK(s[k] > s[kDead] + 1e-6);
  }
}

TEST_CASE("criteria: taylor and mean_gradient give ~0 to a channel the next layer ignores",
          "[criteria]") {
  Network net = small_net(4);
  constexpr int64_t kIgnored = 1;
  zero_input_channel(param(net, "conv2", "weight"), kIgnored);
  const Calibration cal = random_calibration(net, 2, 16, 8);
  for (const std::string criterion : {"taylor", "mean_gradient"}) {
    INFO(criterion);
    const auto s = scores_of(criterion, net, cal, "conv1");
    REQUIRE(s.size() == 4);
    CHECK(std::fabs(s[kIgnored]) < 1e-9);
    for (int64_t k = 0; k < 4; ++k)
      if (k != kIgnored) CHECK(s[k] > 1e-6);
    // The group after conv2 reaches the loss through the classifier: all scores positive.
    for (double v : scores_of(criterion, net, cal, "conv2")) CHECK(v > 0);
  }
}

TEST_CASE("criteria: thinet removes first a channel the next layer ignores", "[criteria]") {
  Network net = small_net(5);
  constexpr int64_t kIgnored = 3;
  zero_input_channel(param(net, "conv2", "weight"), kIgnored);
  const Calibration cal = random_calibration(net, 2, 16, 9);
  const auto s = scores_of("thinet", net, cal, "conv1");
  REQUIRE(s.size() == 4);
  CHECK(s[kIgnored] == 0.0);  // removal order: first
  std::vector<double> sorted = s;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == std::vector<double>{0, 1, 2, 3});
  // Seeded sampling: the same seed gives the same order.
  CHECK(scores_of("thinet", net, cal, "conv2", 11) == scores_of("thinet", net, cal, "conv2", 11));
}

TEST_CASE("criteria: thinet_refit reduces the consumer's reconstruction error", "[criteria]") {
  // Channel 1 duplicates channel 0 at half the size (filter, bias, and the weights conv2 reads
  // it with), so once it is pruned, scaling channel 0's weights in conv2 by 1.5 restores conv2's
  // output exactly. Pruning channel 3 as well, which is independent of the others, leaves an
  // error that scaling can only partly make up for.
  Network net = small_net(6);
  Tensor& w1 = param(net, "conv1", "weight");
  for (int k = 0; k < 9; ++k) w1.data[9 + k] = 0.5f * w1.data[k];
  param(net, "conv1", "bias").data[1] = 0.5f * param(net, "conv1", "bias").data[0];
  Tensor& w2 = param(net, "conv2", "weight");  // {5, 4, 3, 3}
  for (int o = 0; o < 5; ++o)
    for (int k = 0; k < 9; ++k) w2.data[(o * 4 + 1) * 9 + k] = w2.data[(o * 4 + 0) * 9 + k];

  const ChannelAnalysis ca = analyze_channels(net);
  const Calibration cal = random_calibration(net, 2, 16, 10);
  const Calibration fresh = random_calibration(net, 2, 16, 99);
  for (const std::vector<int64_t>& keep : {std::vector<int64_t>{0, 2, 3}, {0, 2}}) {
    INFO("kept " << keep.size() << " channels");
    std::vector<std::vector<int64_t>> kept(ca.groups.size());
    kept[ca.find_group("conv1")] = keep;
    const Network pruned = prune(net, ca, kept);
    Network refit = pruned;
    thinet_refit(net, refit, ca, kept, cal);

    for (const Calibration* data : {&cal, &fresh}) {
      const at::Tensor want = node_output(net, "conv2", *data);
      const double before = squared_error(node_output(pruned, "conv2", *data), want);
      const double after = squared_error(node_output(refit, "conv2", *data), want);
      INFO("before " << before << ", after " << after);
      CHECK(before > 1);
      CHECK(after < (keep.size() == 3 ? 1e-4 : 0.9) * before);
    }
    // Only conv2 (the consumer) changes, and only by one scale per input channel.
    CHECK(param(refit, "conv1", "weight").data == param(pruned, "conv1", "weight").data);
    const at::Tensor ratio =
        to_torch(param(refit, "conv2", "weight")) / to_torch(param(pruned, "conv2", "weight"));
    CHECK((ratio - ratio.select(0, 0).unsqueeze(0)).abs().max().item<double>() < 1e-4);
    if (keep.size() == 3) CHECK(ratio[0][0][0][0].item<double>() == Approx(1.5).epsilon(1e-3));
  }

  std::vector<std::vector<int64_t>> kept(ca.groups.size());
  Network copy = net;
  CHECK_THROWS_AS(thinet_refit(net, copy, ca, kept, Calibration{}), ConfigError);
}

TEST_CASE("criteria: thinet_refit on zoo models brings the outputs closer to the original's",
          "[criteria]") {
  for (const std::string model : {"resnet8", "mobilenetv2_small"}) {
    INFO(model);
    const Network net =
        tightfit::models::make_model(model, tightfit::models::default_options(model));
    const ChannelAnalysis ca = analyze_channels(net);
    const Calibration cal = random_calibration(net, 2, 16, 13);
    const Calibration fresh = random_calibration(net, 2, 16, 14);
    // Keep the better half of every decision point by ThiNet's own order.
    const auto scores = channel_importance("thinet", net, ca, cal, 5);
    std::vector<std::vector<int64_t>> kept(ca.groups.size());
    for (int g : ca.decision_points) {
      const auto& s = scores[g];
      for (size_t c = 0; c < s.size(); ++c)
        if (s[c] >= static_cast<double>(s.size() / 2)) kept[g].push_back(static_cast<int64_t>(c));
    }
    const Network pruned = prune(net, ca, kept);
    Network refit = pruned;
    thinet_refit(net, refit, ca, kept, cal);
    const std::string out = net.node(net.output()).name;
    for (const Calibration* data : {&cal, &fresh}) {
      const at::Tensor want = node_output(net, out, *data);
      const double before = squared_error(node_output(pruned, out, *data), want);
      const double after = squared_error(node_output(refit, out, *data), want);
      INFO("squared error before " << before << ", after " << after);
      CHECK(before > 0);
      CHECK(after < 0.5 * before);
    }
  }
}

TEST_CASE("criteria: random is deterministic per seed and differs across seeds", "[criteria]") {
  const Network net = small_net(7);
  const auto a = scores_of("random", net, Calibration{}, "conv2", 1);
  REQUIRE(a.size() == 5);
  CHECK(a == scores_of("random", net, Calibration{}, "conv2", 1));
  CHECK(a != scores_of("random", net, Calibration{}, "conv2", 2));
  for (double v : a) CHECK((v >= 0 && v < 1));
}

TEST_CASE("criteria: every criterion scores every decision point of zoo models", "[criteria]") {
  for (const std::string model : {"resnet8", "mobilenetv2_small"}) {
    const Network net =
        tightfit::models::make_model(model, tightfit::models::default_options(model));
    const ChannelAnalysis ca = analyze_channels(net);
    const Calibration cal = random_calibration(net, 2, 16, 12);
    REQUIRE(!ca.decision_points.empty());
    for (const std::string& criterion : criterion_names()) {
      INFO(model << " " << criterion);
      const auto scores = channel_importance(criterion, net, ca, cal, 3);
      REQUIRE(scores.size() == ca.groups.size());
      for (size_t g = 0; g < ca.groups.size(); ++g) {
        const bool decision = std::count(ca.decision_points.begin(), ca.decision_points.end(),
                                         static_cast<int>(g)) > 0;
        INFO("group " << ca.groups[g].id);
        REQUIRE(static_cast<int64_t>(scores[g].size()) == (decision ? ca.groups[g].channels : 0));
        for (double v : scores[g]) REQUIRE(std::isfinite(v));
      }
    }
  }
}

TEST_CASE("criteria: unknown names and missing data are ConfigErrors", "[criteria]") {
  const Network net = small_net(8);
  const ChannelAnalysis ca = analyze_channels(net);
  const std::vector<std::string> data_driven = {"apoz",   "act_mean",      "act_var", "entropy",
                                                "taylor", "mean_gradient", "thinet"};
  for (const std::string& name : criterion_names()) {
    INFO(name);
    const bool needs = std::count(data_driven.begin(), data_driven.end(), name) > 0;
    CHECK(criterion_needs_data(name) == needs);
    if (needs) {
      CHECK_THROWS_WITH(channel_importance(name, net, ca, Calibration{}, 0),
                        Catch::Contains("'" + name + "' needs calibration data"));
      CHECK_THROWS_AS(channel_importance(name, net, ca, Calibration{}, 0), ConfigError);
    } else {
      CHECK_NOTHROW(channel_importance(name, net, ca, Calibration{}, 0));
    }
  }
  CHECK_THROWS_AS(channel_importance("l3", net, ca, Calibration{}, 0), ConfigError);
  CHECK_THROWS_WITH(channel_importance("l3", net, ca, Calibration{}, 0),
                    Catch::Contains("'l3'") && Catch::Contains("l1, l2, fpgm") &&
                        Catch::Contains("thinet, random"));
  CHECK_THROWS_AS(criterion_needs_data("l3"), ConfigError);

  // Calibration data that does not fit the network is an input error naming the batch.
  Calibration wrong = random_calibration(net, 1, 4, 1);
  wrong.images[0] = torch::randn({4, 3, 8, 8});
  CHECK_THROWS_WITH(channel_importance("apoz", net, ca, wrong, 0),
                    Catch::Contains("calibration batch 0 has shape 4x3x8x8"));
  Calibration unlabeled = random_calibration(net, 1, 4, 1);
  unlabeled.labels.clear();
  CHECK_THROWS_AS(channel_importance("taylor", net, ca, unlabeled, 0), tightfit::InputError);
  unlabeled.labels.push_back(torch::full({4}, kClasses, torch::kInt64));
  CHECK_THROWS_WITH(channel_importance("mean_gradient", net, ca, unlabeled, 0),
                    Catch::Contains("labels outside [0, 3)"));
  // Activation criteria do not need labels.
  unlabeled.labels.clear();
  CHECK_NOTHROW(channel_importance("act_var", net, ca, unlabeled, 0));
  CHECK(criterion_names().size() == 12);
}
