// Low-rank factorization: at full rank every method reproduces the network (SVD of linears on
// vgg_small, Tucker-2 and spatial on hand-built convs with stride, padding, dilation and
// non-square kernels, and on resnet8); the error falls as the rank rises; energy 1.0 is the full
// rank and lower energies match an independent SVD; factor names, shapes, attributes and
// costs are as specified; a factorization that would grow the layer, depthwise convs and 1x1
// convs under "spatial" are reported and left as is; user mistakes are ConfigErrors listing what
// is valid; and half-rank resnet8 runs with the shapes that inference predicts.

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/errors.h"
#include "graph/builder.h"
#include "graph/executor.h"
#include "graph/network.h"
#include "models/zoo.h"
#include "policies/lowrank.h"

using Catch::Matchers::Contains;
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
using tightfit::policies::factorize;
using tightfit::policies::LowRankConfig;
using tightfit::policies::LowRankReport;

namespace {

/// Outputs of factorized networks at full rank agree with the original to float32 round-off.
constexpr double kExactTol = 1e-4;

at::Tensor random_input(const Network& net, int64_t batch, uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<int64_t> shape = {batch};
  shape.insert(shape.end(), net.input_shape().begin(), net.input_shape().end());
  return torch::randn(shape);
}

at::Tensor run_eval(const Network& net, const at::Tensor& x) {
  torch::NoGradGuard no_grad;
  Executor ex(net);
  ex.train(false);
  return ex.forward(x);
}

/// max |a - b| / max |a|
double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a - b).abs().max().item<double>() / a.abs().max().item<double>();
}

/// Relative output error of `factored` against `net` on a fixed random batch.
double output_error(const Network& net, const Network& factored) {
  const at::Tensor x = random_input(net, 4, 7);
  return rel_diff(run_eval(net, x), run_eval(factored, x));
}

/// ||a - b||_F / ||a||_F on a batch of `batch` Gaussian inputs: for such inputs its square
/// estimates the squared Frobenius error of the layer's weight (relative), which truncation
/// reduces with every added rank; the max-norm error is too noisy to order nearby ranks.
double frobenius_error(const Network& net, const Network& factored, int64_t batch) {
  const at::Tensor x = random_input(net, batch, 8);
  const at::Tensor a = run_eval(net, x);
  const at::Tensor b = run_eval(factored, x);
  return (a - b).norm().item<double>() / a.norm().item<double>();
}

std::vector<std::string> layers_of(const Network& net, OpKind op) {
  std::vector<std::string> names;
  for (const auto& n : net.nodes())
    if (n.op == op) names.push_back(n.name);
  return names;
}

std::map<std::string, double> all_at(const std::vector<std::string>& layers, double v) {
  std::map<std::string, double> ranks;
  for (const auto& l : layers) ranks[l] = v;
  return ranks;
}

LowRankConfig config(const std::string& conv, const std::string& rank_by, bool allow_larger) {
  LowRankConfig c;
  c.conv = conv;
  c.rank_by = rank_by;
  c.allow_larger = allow_larger;
  return c;
}

const LowRankReport& report_for(const std::vector<LowRankReport>& reports,
                                const std::string& layer) {
  for (const auto& r : reports)
    if (r.layer == layer) return r;
  FAIL("no report for " << layer);
  throw std::logic_error("unreachable");
}

/// Kaiming-like random tensor (seeded).
Tensor random_tensor(Shape shape, int64_t fan_in, uint64_t seed) {
  torch::manual_seed(seed);
  return tightfit::graph::from_torch(torch::randn(shape) *
                                     std::sqrt(2.0 / static_cast<double>(fan_in)));
}

/// Convs with stride 2 + bias (c1), padding 2 + dilation 2 without bias (c2), a 3x5 kernel with
/// stride (2,1), padding (1,2), dilation (1,2) and bias (c3), a 1x1 conv (c4); then two linears.
/// Odd, non-square input so that any mix-up of h and w changes the shapes.
Network hand_net() {
  Builder b({3, 17, 14}, 11);
  int x = b.conv("c1", b.input(), 8, 3, /*stride=*/2, /*padding=*/1, /*groups=*/1, /*bias=*/true);
  x = b.relu("r1", x);
  x = b.conv("c2", x, 12, 3, 1, /*padding=*/2, 1, /*bias=*/false, /*dilation=*/2);
  Network net = b.finish(x);

  Node c3;
  c3.name = "c3";
  c3.op = OpKind::kConv2d;
  c3.inputs = {x};
  c3.attrs.in_channels = 12;
  c3.attrs.out_channels = 10;
  c3.attrs.kernel = {3, 5};
  c3.attrs.stride = {2, 1};
  c3.attrs.padding = {1, 2};
  c3.attrs.dilation = {1, 2};
  c3.attrs.bias = true;
  c3.params["weight"] = random_tensor({10, 12, 3, 5}, 12 * 15, 1);
  c3.params["bias"] = random_tensor({10}, 1, 2);
  int id = net.add(c3);

  Node r3;
  r3.name = "r3";
  r3.op = OpKind::kReLU;
  r3.inputs = {id};
  id = net.add(r3);

  Node c4 = c3;
  c4.name = "c4";
  c4.inputs = {id};
  c4.attrs = {};
  c4.attrs.in_channels = 10;
  c4.attrs.out_channels = 16;
  c4.attrs.bias = true;
  c4.params["weight"] = random_tensor({16, 10, 1, 1}, 10, 3);
  c4.params["bias"] = random_tensor({16}, 1, 4);
  id = net.add(c4);

  Node pool;
  pool.name = "pool";
  pool.op = OpKind::kAdaptiveAvgPool;
  pool.inputs = {id};
  id = net.add(pool);
  Node flat;
  flat.name = "flatten";
  flat.op = OpKind::kFlatten;
  flat.inputs = {id};
  id = net.add(flat);

  Node fc1;
  fc1.name = "fc1";
  fc1.op = OpKind::kLinear;
  fc1.inputs = {id};
  fc1.attrs.in_channels = 16;
  fc1.attrs.out_channels = 20;
  fc1.attrs.bias = true;
  fc1.params["weight"] = random_tensor({20, 16}, 16, 5);
  fc1.params["bias"] = random_tensor({20}, 1, 6);
  id = net.add(fc1);
  Node fc2 = fc1;
  fc2.name = "fc2";
  fc2.inputs = {id};
  fc2.attrs.in_channels = 20;
  fc2.attrs.out_channels = 5;
  fc2.attrs.bias = false;
  fc2.params.clear();
  fc2.params["weight"] = random_tensor({5, 20}, 20, 7);
  id = net.add(fc2);
  net.set_output(id);
  infer_shapes(net);
  return net;
}

/// One conv layer (16 -> 24, 3x3, padding 1) or one linear layer (48 -> 32) on its own.
Network single_layer(bool conv) {
  Builder b(conv ? Shape{16, 10, 10} : Shape{48, 1, 1}, 21);
  if (conv) return b.finish(b.conv("layer", b.input(), 24, 3, 1, 1, 1, /*bias=*/true));
  const int x = b.flatten("flatten", b.input());
  return b.finish(b.linear("layer", x, 32, /*bias=*/true));
}

/// Every node's output has the shape inference predicts, and the network runs.
void check_runs_with_inferred_shapes(const Network& net) {
  const auto shapes = infer_shapes(net);
  torch::NoGradGuard no_grad;
  Executor ex(net);
  const auto values = ex.forward_all(random_input(net, 2, 3));
  REQUIRE(values.size() == shapes.size());
  for (size_t i = 0; i < values.size(); ++i) {
    std::vector<int64_t> expected = {2};
    expected.insert(expected.end(), shapes[i].begin(), shapes[i].end());
    INFO(net.node(static_cast<int>(i)).name);
    CHECK(values[i].sizes().vec() == expected);
    CHECK(torch::isfinite(values[i]).all().item<bool>());
  }
}

}  // namespace

TEST_CASE("full-rank SVD of vgg_small's linear layers reproduces its outputs",
          "[policies][lowrank]") {
  const Network net = make_model("vgg_small", default_options("vgg_small"));
  std::vector<LowRankReport> reports;
  const Network out = factorize(net, all_at(layers_of(net, OpKind::kLinear), 1.0),
                                config("tucker2", "fraction", true), reports);
  REQUIRE(reports.size() == 2);
  for (const auto& r : reports) {
    CHECK(r.applied);
    CHECK(r.kind == "svd");
    CHECK(r.ranks == std::vector<int64_t>{r.full_rank});
    CHECK(r.new_layers == std::vector<std::string>{r.layer + ".lr0", r.layer + ".lr1"});
  }
  CHECK(report_for(reports, "classifier.3").full_rank == 10);
  CHECK(out.meta() == net.meta());
  CHECK(output_error(net, out) < kExactTol);
}

TEST_CASE("full-rank Tucker-2 and spatial factorizations reproduce the outputs",
          "[policies][lowrank]") {
  const Network net = hand_net();
  const auto convs = layers_of(net, OpKind::kConv2d);
  REQUIRE(convs.size() == 4);

  SECTION("tucker2 (and SVD of the linears)") {
    auto ranks = all_at(convs, 1.0);
    ranks["fc1"] = ranks["fc2"] = 1.0;
    std::vector<LowRankReport> reports;
    const Network out = factorize(net, ranks, config("tucker2", "fraction", true), reports);
    REQUIRE(reports.size() == 6);
    for (const auto& r : reports) CHECK(r.applied);
    CHECK(report_for(reports, "c3").ranks == std::vector<int64_t>{12, 10});
    CHECK(report_for(reports, "c3").full_rank == 12);
    CHECK(output_error(net, out) < kExactTol);
    check_runs_with_inferred_shapes(out);
  }
  SECTION("spatial; the 1x1 conv is reported and left as is") {
    std::vector<LowRankReport> reports;
    const Network out =
        factorize(net, all_at(convs, 1.0), config("spatial", "fraction", true), reports);
    REQUIRE(reports.size() == 4);
    for (const auto& name : {"c1", "c2", "c3"}) CHECK(report_for(reports, name).applied);
    const auto& c4 = report_for(reports, "c4");
    CHECK_FALSE(c4.applied);
    CHECK_THAT(c4.note, Contains("1x1"));
    CHECK(out.find("c4") >= 0);
    CHECK(out.find("c4.lr0") < 0);
    CHECK(report_for(reports, "c3").full_rank == 36);  // min(12*3, 10*5)
    CHECK(output_error(net, out) < kExactTol);
  }
  SECTION("energy 1.0 is the full rank of each unfolding") {
    for (const std::string method : {"tucker2", "spatial"}) {
      std::vector<LowRankReport> reports;
      const Network e = factorize(net, all_at(convs, 1.0), config(method, "energy", true), reports);
      REQUIRE(reports.size() == convs.size());
      for (const auto& r : reports) {
        INFO(method << " " << r.layer);
        const auto& a = net.node(net.find(r.layer)).attrs;
        const int64_t taps = a.kernel[0] * a.kernel[1];
        if (method == "tucker2") {
          // A mode's unfolding has rank at most its other side: c4 (1x1, 10 -> 16) has only
          // 10 output-mode singular values.
          CHECK(r.ranks == std::vector<int64_t>{std::min(a.in_channels, a.out_channels * taps),
                                                std::min(a.out_channels, a.in_channels * taps)});
        } else if (r.applied) {
          CHECK(r.ranks == std::vector<int64_t>{r.full_rank});
        }
      }
      CHECK(output_error(net, e) < kExactTol);
    }
  }
}

TEST_CASE("full-rank factorizations of every resnet8 conv reproduce its outputs",
          "[policies][lowrank]") {
  const Network net = make_model("resnet8", default_options("resnet8"));
  const auto convs = layers_of(net, OpKind::kConv2d);
  for (const std::string method : {"tucker2", "spatial"}) {
    INFO(method);
    std::vector<LowRankReport> reports;
    const Network out =
        factorize(net, all_at(convs, 1.0), config(method, "fraction", true), reports);
    REQUIRE(reports.size() == convs.size());
    CHECK(output_error(net, out) < kExactTol);
  }
}

TEST_CASE("the error falls as the rank rises", "[policies][lowrank]") {
  for (const bool conv : {false, true}) {
    const Network net = single_layer(conv);
    for (const std::string method : {"tucker2", "spatial"}) {
      if (!conv && method == "spatial") continue;  // linears have one method
      INFO((conv ? "conv " : "linear ") << method);
      double previous = 2.0;
      for (const double f : {0.125, 0.25, 0.5, 0.75, 1.0}) {
        std::vector<LowRankReport> reports;
        const Network out =
            factorize(net, {{"layer", f}}, config(method, "fraction", true), reports);
        const double err = frobenius_error(net, out, 64);
        INFO("fraction " << f << " error " << err);
        CHECK(err < previous);
        previous = err;
      }
      CHECK(previous < kExactTol);
    }
  }
}

TEST_CASE("energy ranks match an independent SVD", "[policies][lowrank]") {
  const Network net = single_layer(false);
  const at::Tensor w = to_torch(net.node(net.find("layer")).params.at("weight"));
  const at::Tensor s2 = torch::linalg_svdvals(w.to(torch::kFloat64)).square();
  const at::Tensor share = s2.cumsum(0) / s2.sum();
  int64_t last = 0;
  for (const double e : {0.3, 0.6, 0.9, 0.99, 1.0}) {
    std::vector<LowRankReport> reports;
    factorize(net, {{"layer", e}}, config("tucker2", "energy", true), reports);
    REQUIRE(reports.size() == 1);
    const int64_t r = reports[0].ranks.at(0);
    INFO("energy " << e << " rank " << r);
    CHECK(share[r - 1].item<double>() >= e - 1e-12);
    if (r > 1) CHECK(share[r - 2].item<double>() < e);
    CHECK(r >= last);
    last = r;
  }
  CHECK(last == 32);
}

TEST_CASE("factor layers have the specified names, shapes, attributes and costs",
          "[policies][lowrank]") {
  const Network net = hand_net();
  const auto weight_shape = [](const Network& n, const std::string& name) {
    REQUIRE(n.find(name) >= 0);
    return n.node(n.find(name)).params.at("weight").shape;
  };
  const auto consumer_reads = [](const Network& n, const std::string& consumer) {
    return n.node(n.node(n.find(consumer)).inputs.at(0)).name;
  };

  SECTION("svd: in -> r without bias, r -> out with the original bias") {
    std::vector<LowRankReport> reports;
    const Network out = factorize(net, {{"fc1", 4}}, config("tucker2", "count", false), reports);
    CHECK(weight_shape(out, "fc1.lr0") == Shape{4, 16});
    CHECK(weight_shape(out, "fc1.lr1") == Shape{20, 4});
    const Node& lr0 = out.node(out.find("fc1.lr0"));
    const Node& lr1 = out.node(out.find("fc1.lr1"));
    CHECK_FALSE(lr0.attrs.bias);
    CHECK(lr0.params.count("bias") == 0);
    CHECK(lr1.params.at("bias").data == net.node(net.find("fc1")).params.at("bias").data);
    CHECK(out.find("fc1") < 0);
    CHECK(consumer_reads(out, "fc2") == "fc1.lr1");
    const auto& r = reports.at(0);
    CHECK(r.applied);
    CHECK(r.params_before == 20 * 16 + 20);
    CHECK(r.params_after == 4 * 16 + 20 * 4 + 20);
    CHECK(r.macs_before == 20 * 16);
    CHECK(r.macs_after == 4 * 16 + 20 * 4);
  }
  SECTION("tucker2: 1x1 in -> r_in, core with the original geometry, 1x1 r_out -> out") {
    std::vector<LowRankReport> reports;
    const Network out =
        factorize(net, {{"c3", 0.5}}, config("tucker2", "fraction", false), reports);
    const auto& r = reports.at(0);
    REQUIRE(r.applied);
    CHECK(r.kind == "tucker2");
    CHECK(r.ranks == std::vector<int64_t>{6, 5});
    CHECK(r.new_layers == std::vector<std::string>{"c3.lr0", "c3.lr1", "c3.lr2"});
    CHECK(weight_shape(out, "c3.lr0") == Shape{6, 12, 1, 1});
    CHECK(weight_shape(out, "c3.lr1") == Shape{5, 6, 3, 5});
    CHECK(weight_shape(out, "c3.lr2") == Shape{10, 5, 1, 1});
    const auto& a0 = out.node(out.find("c3.lr0")).attrs;
    const auto& a1 = out.node(out.find("c3.lr1")).attrs;
    const auto& a2 = out.node(out.find("c3.lr2")).attrs;
    CHECK(
        (a0.stride == std::array<int64_t, 2>{1, 1} && a0.padding == std::array<int64_t, 2>{0, 0}));
    CHECK((a1.stride == std::array<int64_t, 2>{2, 1} &&
           a1.padding == std::array<int64_t, 2>{1, 2} &&
           a1.dilation == std::array<int64_t, 2>{1, 2}));
    CHECK((!a0.bias && !a1.bias && a2.bias));
    CHECK(consumer_reads(out, "r3") == "c3.lr2");
    // c3 maps {12, 9, 7} to {10, 5, 3}.
    CHECK(r.params_before == 10 * 12 * 15 + 10);
    CHECK(r.params_after == 6 * 12 + 5 * 6 * 15 + 10 * 5 + 10);
    CHECK(r.macs_before == 10 * 12 * 15 * 15);
    CHECK(r.macs_after == 6 * 12 * 63 + 5 * 6 * 15 * 15 + 10 * 5 * 15);
  }
  SECTION("tucker2 counts are clamped to each mode's channels") {
    std::vector<LowRankReport> reports;
    factorize(net, {{"c3", 11}}, config("tucker2", "count", true), reports);
    CHECK(reports.at(0).ranks == std::vector<int64_t>{11, 10});
  }
  SECTION("spatial: kh x 1 vertical, then 1 x kw horizontal with the bias") {
    std::vector<LowRankReport> reports;
    const Network out = factorize(net, {{"c3", 4}}, config("spatial", "count", false), reports);
    const auto& r = reports.at(0);
    REQUIRE(r.applied);
    CHECK(r.kind == "spatial");
    CHECK(r.ranks == std::vector<int64_t>{4});
    CHECK(weight_shape(out, "c3.lr0") == Shape{4, 12, 3, 1});
    CHECK(weight_shape(out, "c3.lr1") == Shape{10, 4, 1, 5});
    const auto& a0 = out.node(out.find("c3.lr0")).attrs;
    const auto& a1 = out.node(out.find("c3.lr1")).attrs;
    CHECK((a0.stride == std::array<int64_t, 2>{2, 1} &&
           a0.padding == std::array<int64_t, 2>{1, 0} &&
           a0.dilation == std::array<int64_t, 2>{1, 1} && !a0.bias));
    CHECK((a1.stride == std::array<int64_t, 2>{1, 1} &&
           a1.padding == std::array<int64_t, 2>{0, 2} &&
           a1.dilation == std::array<int64_t, 2>{1, 2} && a1.bias));
    CHECK(consumer_reads(out, "r3") == "c3.lr1");
    CHECK(r.params_after == 4 * 12 * 3 + 10 * 4 * 5 + 10);
    // vertical: {4, 5, 7} outputs; horizontal: {10, 5, 3}
    CHECK(r.macs_after == 4 * 12 * 3 * 35 + 10 * 4 * 5 * 15);
    const auto j = r.to_json();
    CHECK(j.at("layer") == "c3");
    CHECK(j.at("applied") == true);
    CHECK(j.at("new_layers") == nlohmann::json{"c3.lr0", "c3.lr1"});
    CHECK(j.at("params_after") == r.params_after);
  }
}

TEST_CASE("a factorization larger than the layer is reported and not applied",
          "[policies][lowrank]") {
  const Network net = make_model("vgg_small", default_options("vgg_small"));
  std::vector<LowRankReport> reports;
  const Network out = factorize(net, {{"classifier.0", 1.0}, {"features.0", 1.0}},
                                config("tucker2", "fraction", false), reports);
  REQUIRE(reports.size() == 2);
  for (const auto& r : reports) {
    INFO(r.layer);
    CHECK_FALSE(r.applied);
    CHECK_THAT(r.note, Contains("would be larger") && Contains("left as is"));
    CHECK(r.params_after == r.params_before);
    CHECK(r.macs_after == r.macs_before);
    CHECK(r.new_layers.empty());
    CHECK(out.find(r.layer) >= 0);
    CHECK(out.find(r.layer + ".lr0") < 0);
  }
  CHECK(out.size() == net.size());
  const at::Tensor x = random_input(net, 2, 5);
  CHECK(torch::equal(run_eval(net, x), run_eval(out, x)));
}

TEST_CASE("depthwise convs of mobilenetv2_small are reported and left as is",
          "[policies][lowrank]") {
  const Network net = make_model("mobilenetv2_small", default_options("mobilenetv2_small"));
  std::map<std::string, double> ranks;
  for (const auto& n : net.nodes())
    if (n.op == OpKind::kConv2d && n.attrs.groups > 1) ranks[n.name] = 0.5;
  REQUIRE(!ranks.empty());
  std::vector<LowRankReport> reports;
  const Network out = factorize(net, ranks, config("tucker2", "fraction", false), reports);
  REQUIRE(reports.size() == ranks.size());
  for (const auto& r : reports) {
    INFO(r.layer);
    CHECK_FALSE(r.applied);
    CHECK_THAT(r.note, Contains("depthwise"));
  }
  const at::Tensor x = random_input(net, 2, 9);
  CHECK(torch::equal(run_eval(net, x), run_eval(out, x)));
}

TEST_CASE("half-rank factorization of every resnet8 conv runs with the inferred shapes",
          "[policies][lowrank]") {
  const Network net = make_model("resnet8", default_options("resnet8"));
  const auto convs = layers_of(net, OpKind::kConv2d);
  for (const std::string method : {"tucker2", "spatial"}) {
    INFO(method);
    std::vector<LowRankReport> reports;
    const Network out =
        factorize(net, all_at(convs, 0.5), config(method, "fraction", false), reports);
    REQUIRE(reports.size() == convs.size());
    int applied = 0;
    int64_t saved = 0;
    for (const auto& r : reports) {
      applied += r.applied;
      saved += r.params_before - r.params_after;
      if (r.applied) CHECK((r.params_after < r.params_before && r.macs_after < r.macs_before));
    }
    CHECK(applied > 0);
    CHECK(net.num_params() - out.num_params() == saved);
    check_runs_with_inferred_shapes(out);
  }
}

TEST_CASE("low-rank user mistakes are ConfigErrors listing what is valid",
          "[policies][lowrank][config]") {
  const Network net = make_model("resnet8", default_options("resnet8"));
  std::vector<LowRankReport> reports;
  const auto fails = [&](const std::map<std::string, double>& ranks, const LowRankConfig& c,
                         const std::string& expected) {
    std::string message = "no error";
    try {
      factorize(net, ranks, c, reports);
    } catch (const ConfigError& e) {
      message = e.what();
    }
    CHECK_THAT(message, Contains(expected));
  };
  const LowRankConfig fraction = config("tucker2", "fraction", false);
  const LowRankConfig count = config("spatial", "count", false);
  const LowRankConfig energy = config("tucker2", "energy", false);

  fails({{"nope", 0.5}}, fraction, "unknown layer 'nope'");
  fails({{"nope", 0.5}}, fraction, "valid layers: conv1, layer1.0.conv1");
  fails({{"bn1", 0.5}}, fraction, "conv2d and linear layers: conv1");
  fails({{"conv1", 0.0}}, fraction, "(0, 1]");
  fails({{"conv1", 1.5}}, fraction, "(0, 1]");
  fails({{"fc", 0.0}}, energy, "(0, 1]");
  fails({{"fc", 1.01}}, energy, "(0, 1]");
  fails({{"fc", 0.0}}, count, "integer count in 1..10");
  fails({{"fc", 2.5}}, count, "integer count in 1..10");
  fails({{"fc", 11}}, count, "integer count in 1..10");
  fails({{"conv1", 4}}, count, "integer count in 1..3");  // spatial: min(1*3, 16*3)
  fails({{"conv1", 0}}, config("tucker2", "count", false), "integer count >= 1");
  fails({{"conv1", 0.5}}, config("cp", "fraction", false), "tucker2, spatial");
  fails({{"conv1", 0.5}}, config("tucker2", "percent", false), "fraction, count, energy");
  CHECK(reports.empty());  // a mistake leaves the reports as they were
}

TEST_CASE("LowRankConfig parses strictly and round-trips", "[policies][lowrank][config]") {
  const LowRankConfig d = LowRankConfig::from_json(nlohmann::json::object(), "lowrank");
  CHECK(d.conv == "tucker2");
  CHECK(d.rank_by == "fraction");
  CHECK_FALSE(d.allow_larger);

  const auto j = nlohmann::json{{"conv", "spatial"}, {"rank_by", "energy"}, {"allow_larger", true}};
  const LowRankConfig c = LowRankConfig::from_json(j, "lowrank");
  CHECK(c.conv == "spatial");
  CHECK(c.rank_by == "energy");
  CHECK(c.allow_larger);
  CHECK(c.to_json() == j);
  CHECK(LowRankConfig::from_json(c.to_json(), "lowrank").to_json() == j);

  const auto message = [](const nlohmann::json& bad) {
    try {
      LowRankConfig::from_json(bad, "lowrank");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(message({{"conv", "cp"}}), Contains("lowrank.conv") && Contains("tucker2, spatial"));
  CHECK_THAT(message({{"rank_by", "rank"}}),
             Contains("lowrank.rank_by") && Contains("fraction, count, energy"));
  CHECK_THAT(message({{"rnak_by", "count"}}),
             Contains("rnak_by") && Contains("conv, rank_by, allow_larger"));
  CHECK_THAT(message({{"conv", 3}}), Contains("lowrank.conv"));
  CHECK_THAT(message(nlohmann::json::array()), Contains("lowrank"));
}
