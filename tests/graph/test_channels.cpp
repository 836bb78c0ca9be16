// Channel groups of the zoo models and of hand-built networks: residual adds couple their
// producers into one group, depthwise convolutions pass their input's group through, grouped
// convolutions and the network's ends are not prunable, flatten spreads each channel over its
// spatial positions, and concat consumers are sliced per segment.

#include <torch/torch.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "graph/builder.h"
#include "graph/channels.h"
#include "graph/executor.h"
#include "graph/network.h"
#include "models/zoo.h"
#include "policies/compress.h"

using tightfit::graph::analyze_channels;
using tightfit::graph::Builder;
using tightfit::graph::ChannelAnalysis;
using tightfit::graph::ChannelGroup;
using tightfit::graph::ChannelLayout;
using tightfit::graph::kept_indices;
using tightfit::graph::Network;
using tightfit::models::default_options;
using tightfit::models::make_model;

namespace {

Network zoo(const std::string& name) { return make_model(name, default_options(name)); }

std::vector<std::string> names(const Network& net, const std::vector<int>& ids) {
  std::vector<std::string> out;
  for (int id : ids) out.push_back(net.node(id).name);
  return out;
}

const ChannelGroup& group(const ChannelAnalysis& ca, const std::string& id) {
  const int g = ca.find_group(id);
  INFO("group " << id);
  REQUIRE(g >= 0);
  return ca.groups[g];
}

/// The group whose producers include node `name`.
const ChannelGroup& group_produced_by(const Network& net, const ChannelAnalysis& ca,
                                      const std::string& name) {
  const int id = net.find(name);
  INFO("producer " << name);
  REQUIRE(id >= 0);
  for (const auto& g : ca.groups)
    if (std::find(g.producers.begin(), g.producers.end(), id) != g.producers.end()) return g;
  FAIL("no group is produced by " << name);
  return ca.groups.front();
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::vector<std::string> decision_ids(const ChannelAnalysis& ca) {
  std::vector<std::string> out;
  for (int g : ca.decision_points) out.push_back(ca.groups[g].id);
  return out;
}

}  // namespace

TEST_CASE("resnet20: residual adds couple each stage's convolutions", "[graph][channels]") {
  const Network net = zoo("resnet20");
  const ChannelAnalysis ca = analyze_channels(net);

  // Stage 1 has no projection: the stem conv and every block's second conv write one tensor.
  const ChannelGroup& stem = group(ca, "conv1");
  CHECK(names(net, stem.producers) ==
        std::vector<std::string>{"conv1", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2"});
  CHECK(stem.channels == 16);
  CHECK(stem.prunable);
  CHECK(names(net, stem.consumers) == std::vector<std::string>{"layer1.0.conv1", "layer1.1.conv1",
                                                               "layer1.2.conv1", "layer2.0.conv1",
                                                               "layer2.0.downsample.0"});
  for (const std::string member : {"bn1", "relu", "layer1.0.add", "layer1.2.relu"})
    CHECK(contains(names(net, stem.members), member));

  // Stages 2 and 3 start with a projection shortcut, coupled with every block's conv2.
  for (const std::string s : {"2", "3"}) {
    const std::string layer = "layer" + s;
    const ChannelGroup& g = group_produced_by(net, ca, layer + ".0.downsample.0");
    INFO("stage " << layer);
    CHECK(g.id == layer + ".0.conv2");  // the first producer in node order names the group
    CHECK(names(net, g.producers) ==
          std::vector<std::string>{layer + ".0.conv2", layer + ".0.downsample.0",
                                   layer + ".1.conv2", layer + ".2.conv2"});
    CHECK(g.channels == (s == "2" ? 32 : 64));
    CHECK(g.prunable);
  }

  // Each block's inner conv1 is a decision point of its own.
  for (int stage = 1; stage <= 3; ++stage)
    for (int block = 0; block < 3; ++block) {
      const std::string p = "layer" + std::to_string(stage) + "." + std::to_string(block) + ".";
      const ChannelGroup& g = group(ca, p + "conv1");
      INFO("block " << p);
      CHECK(names(net, g.producers) == std::vector<std::string>{p + "conv1"});
      CHECK(names(net, g.consumers) == std::vector<std::string>{p + "conv2"});
      CHECK(names(net, g.members) == std::vector<std::string>{p + "conv1", p + "bn1", p + "relu1"});
      CHECK(g.prunable);
    }

  // The classifier's outputs and the network input are fixed.
  const ChannelGroup& fc = group(ca, "fc");
  CHECK_FALSE(fc.prunable);
  CHECK(fc.reason == "network output");
  const ChannelGroup& input = group(ca, "input");
  CHECK_FALSE(input.prunable);
  CHECK(input.reason == "network input");

  CHECK(ca.groups.size() == 14);  // input, 3 residual groups, 9 inner groups, fc
  CHECK(ca.decision_points.size() == 12);
  const auto ids = decision_ids(ca);
  CHECK(ids.front() == "conv1");
  CHECK(std::is_sorted(ca.decision_points.begin(), ca.decision_points.end()));
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == ids.size());
  CHECK_FALSE(contains(ids, "fc"));
  CHECK_FALSE(contains(ids, "input"));
}

TEST_CASE("mobilenetv2_small: depthwise convs share their input's group", "[graph][channels]") {
  const Network net = zoo("mobilenetv2_small");
  const ChannelAnalysis ca = analyze_channels(net);

  // Every expanding block: the depthwise conv is a member of the expand conv's group, never a
  // producer, and both it and the project conv consume those channels.
  for (int block = 2; block <= 7; ++block) {
    const std::string p = "features." + std::to_string(block) + ".conv.";
    INFO("block " << p);
    const ChannelGroup& g = group(ca, p + "0.0");
    CHECK(names(net, g.producers) == std::vector<std::string>{p + "0.0"});
    CHECK(contains(names(net, g.members), p + "1.0"));
    CHECK(contains(names(net, g.members), p + "1.2"));
    CHECK(names(net, g.consumers) == std::vector<std::string>{p + "1.0", p + "2"});
    CHECK(g.prunable);
    CHECK(ca.find_group(p + "1.0") < 0);
  }

  // Block 1 (t = 1) has no expand conv: its depthwise conv and its residual add join the stem.
  const ChannelGroup& stem = group(ca, "features.0.0");
  CHECK(names(net, stem.producers) ==
        std::vector<std::string>{"features.0.0", "features.1.conv.1"});
  CHECK(contains(names(net, stem.members), "features.1.conv.0.0"));
  CHECK(contains(names(net, stem.members), "features.1.add"));
  CHECK(stem.prunable);

  // Residual adds couple the project convs of consecutive blocks of a stage.
  for (const auto& [first, second] : std::vector<std::pair<int, int>>{{2, 3}, {4, 5}, {6, 7}}) {
    const std::string a = "features." + std::to_string(first) + ".conv.2";
    const std::string b = "features." + std::to_string(second) + ".conv.2";
    INFO("blocks " << first << ", " << second);
    const ChannelGroup& g = group(ca, a);
    CHECK(names(net, g.producers) == std::vector<std::string>{a, b});
    CHECK(contains(names(net, g.members), "features." + std::to_string(second) + ".add"));
    CHECK(g.prunable);
  }

  const ChannelGroup& classifier = group(ca, "classifier.1");
  CHECK_FALSE(classifier.prunable);
  CHECK(classifier.reason == "network output");
  CHECK(group(ca, "features.8.0").prunable);
  // stem, 6 expand groups, 3 coupled project groups, the last 1x1 conv
  CHECK(ca.decision_points.size() == 11);
}

TEST_CASE("vgg_small: pruning the last conv removes whole spatial blocks of classifier.0",
          "[graph][channels]") {
  const Network net = zoo("vgg_small");
  const ChannelAnalysis ca = analyze_channels(net);
  CHECK(decision_ids(ca) ==
        std::vector<std::string>{"features.0", "features.4", "features.8", "classifier.0"});
  constexpr int64_t kSpatial = 7 * 7;
  CHECK(ca.layouts[net.find("flatten")].spatial == kSpatial);
  CHECK(ca.layouts[net.find("features.10")].spatial == 1);
  const ChannelGroup& last = group(ca, "features.8");
  CHECK(names(net, last.consumers) == std::vector<std::string>{"classifier.0"});

  tightfit::policies::Policy policy;
  policy.keep["features.8"] = 0.5;
  const auto c = tightfit::policies::apply(net, policy);
  const auto& w0 = net.node(net.find("classifier.0")).params.at("weight");
  const auto& w1 = c.net.node(c.net.find("classifier.0")).params.at("weight");
  REQUIRE(w0.shape == tightfit::graph::Shape{128, 64 * kSpatial});
  REQUIRE(w1.shape == tightfit::graph::Shape{128, 32 * kSpatial});
  CHECK(c.net.node(c.net.find("features.8")).params.at("weight").shape ==
        tightfit::graph::Shape{32, 64, 3, 3});
  CHECK(c.net.node(c.net.find("features.9")).params.at("running_mean").shape ==
        tightfit::graph::Shape{32});

  // Column blocks of classifier.0 follow the kept filters of features.8, in order.
  const auto& conv0 = net.node(net.find("features.8")).params.at("weight");
  const auto& conv1 = c.net.node(c.net.find("features.8")).params.at("weight");
  const int64_t per_filter = 64 * 3 * 3;
  std::vector<int64_t> kept;
  for (int64_t k = 0; k < 32; ++k)
    for (int64_t o = 0; o < 64; ++o)
      if (std::equal(conv1.data.begin() + k * per_filter, conv1.data.begin() + (k + 1) * per_filter,
                     conv0.data.begin() + o * per_filter)) {
        kept.push_back(o);
        break;
      }
  REQUIRE(kept.size() == 32);
  CHECK(std::is_sorted(kept.begin(), kept.end()));
  for (int64_t row = 0; row < 128; ++row)
    for (int64_t k = 0; k < 32; ++k) {
      const float* src = w0.data.data() + row * 64 * kSpatial + kept[k] * kSpatial;
      const float* dst = w1.data.data() + row * 32 * kSpatial + k * kSpatial;
      REQUIRE(std::equal(src, src + kSpatial, dst));
    }
  CHECK(infer_shapes(c.net).back() == tightfit::graph::Shape{10});
}

TEST_CASE("concat: one group per input segment, consumers sliced per segment",
          "[graph][channels]") {
  Builder b({3, 8, 8}, 5);
  const int a = b.conv("a", b.input(), 4, 3);
  const int bb = b.conv("b", b.input(), 6, 1);
  const int cat = b.concat("cat", {a, bb});
  Network net = b.finish(b.conv("c", cat, 5, 3, 1, -1, 1, /*bias=*/true));
  const ChannelAnalysis ca = analyze_channels(net);

  CHECK(decision_ids(ca) == std::vector<std::string>{"a", "b"});
  const ChannelLayout& layout = ca.layouts[net.find("cat")];
  REQUIRE(layout.segments.size() == 2);
  CHECK(ca.groups[layout.segments[0].group].id == "a");
  CHECK(layout.segments[0].channels == 4);
  CHECK(ca.groups[layout.segments[1].group].id == "b");
  CHECK(layout.segments[1].channels == 6);
  CHECK(names(net, group(ca, "a").consumers) == std::vector<std::string>{"c"});
  CHECK(names(net, group(ca, "b").consumers) == std::vector<std::string>{"c"});
  CHECK_FALSE(group(ca, "c").prunable);

  // Make the L1 ranking known: filter o of a and b has norm growing with a fixed permutation.
  auto& wa = net.node(net.find("a")).params.at("weight");
  auto& wb = net.node(net.find("b")).params.at("weight");
  const std::vector<float> scale_a = {0.1f, 3.0f, 0.2f, 2.0f};              // keep 1, 3
  const std::vector<float> scale_b = {5.0f, 0.1f, 0.2f, 4.0f, 0.3f, 6.0f};  // keep 0, 3, 5
  for (auto [w, scale] : {std::pair{&wa, &scale_a}, std::pair{&wb, &scale_b}}) {
    const int64_t per = w->numel() / w->shape[0];
    for (int64_t o = 0; o < w->shape[0]; ++o)
      for (int64_t k = 0; k < per; ++k) w->data[o * per + k] = (*scale)[o] * (k % 2 ? 1 : -1);
  }
  tightfit::policies::Policy policy;
  policy.keep["a"] = 0.5;
  policy.keep["b"] = 0.5;
  const auto c = tightfit::policies::apply(net, policy);
  CHECK(c.kept_channels.at("a") == 2);
  CHECK(c.kept_channels.at("b") == 3);

  const std::vector<int64_t> expected_in = {1, 3, 4 + 0, 4 + 3, 4 + 5};
  std::vector<std::vector<int64_t>> kept(ca.groups.size());
  kept[ca.find_group("a")] = {1, 3};
  kept[ca.find_group("b")] = {0, 3, 5};
  CHECK(kept_indices(layout, kept) == expected_in);
  const auto& wc0 = net.node(net.find("c")).params.at("weight");
  const auto& wc1 = c.net.node(c.net.find("c")).params.at("weight");
  REQUIRE(wc1.shape == tightfit::graph::Shape{5, 5, 3, 3});
  for (int64_t o = 0; o < 5; ++o)
    for (size_t i = 0; i < expected_in.size(); ++i)
      for (int64_t k = 0; k < 9; ++k)
        REQUIRE(wc1.data[(o * 5 + i) * 9 + k] == wc0.data[(o * 10 + expected_in[i]) * 9 + k]);

  // The pruned network computes what the original computes with the pruned filters zeroed (no
  // bias on a and b, so a zero filter is a zero channel and contributes nothing to c).
  Network zeroed = net;
  auto zero_filters = [&](const std::string& name, const std::vector<int64_t>& drop) {
    auto& w = zeroed.node(zeroed.find(name)).params.at("weight");
    const int64_t per = w.numel() / w.shape[0];
    for (int64_t o : drop) std::fill_n(w.data.begin() + o * per, per, 0.0f);
  };
  zero_filters("a", {0, 2});
  zero_filters("b", {1, 2, 4});
  tightfit::graph::Executor full(zeroed), pruned(c.net);
  torch::manual_seed(3);
  const at::Tensor x = torch::randn({2, 3, 8, 8});
  torch::NoGradGuard no_grad;
  // Relative: summation order differs between the two convolutions (and between CPUs).
  const at::Tensor expected = full.forward(x);
  CHECK((expected - pruned.forward(x)).abs().max().item<double>() <
        1e-5 * std::max(1.0, expected.abs().max().item<double>()));
}

TEST_CASE("grouped convolutions and single channels are not prunable", "[graph][channels]") {
  Builder b({4, 8, 8}, 1);
  const int x = b.conv("x", b.input(), 8, 1);
  const int g = b.conv("grouped", x, 8, 3, 1, -1, /*groups=*/2);
  const int one = b.conv("one", g, 1, 1);
  const int y = b.conv("y", one, 6, 1);
  Network net = b.finish(b.conv("out", y, 2, 1));
  const ChannelAnalysis ca = analyze_channels(net);
  CHECK_FALSE(group(ca, "x").prunable);
  CHECK(group(ca, "x").reason == "read by grouped convolution 'grouped'");
  CHECK_FALSE(group(ca, "grouped").prunable);
  CHECK(group(ca, "grouped").reason == "grouped convolution 'grouped'");
  CHECK_FALSE(group(ca, "one").prunable);
  CHECK(group(ca, "one").reason == "single channel");
  CHECK(decision_ids(ca) == std::vector<std::string>{"y"});
}

TEST_CASE("kept_indices expands flattened channels", "[graph][channels]") {
  ChannelLayout layout;
  layout.segments = {{0, 3}, {1, 2}};
  layout.spatial = 2;
  CHECK(kept_indices(layout, {{}, {}}) == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(kept_indices(layout, {{0, 2}, {1}}) == std::vector<int64_t>{0, 1, 4, 5, 8, 9});
}
