// The LibTorch executor against a hand-written LibTorch reference on the same weights: eval-mode
// outputs, train-mode BatchNorm statistics, gradients, write-back, and BN recalibration.

#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/errors.h"
#include "graph/builder.h"
#include "graph/executor.h"
#include "graph/network.h"

using tightfit::graph::Attrs;
using tightfit::graph::Builder;
using tightfit::graph::Executor;
using tightfit::graph::from_torch;
using tightfit::graph::Network;
using tightfit::graph::Node;
using tightfit::graph::OpKind;
using tightfit::graph::Tensor;
using tightfit::graph::to_torch;

namespace {

constexpr double kTolerance = 1e-5;
constexpr int64_t kBatch = 4;

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a - b).abs().max().item<double>();
}

/// Fills every BN parameter and statistic and every bias with seeded random values, so that the
/// comparison with the reference exercises all of them (the builder's defaults are 0 and 1).
void randomize(Network& net, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> sym(-0.5f, 0.5f), pos(0.5f, 1.5f);
  for (int i = 0; i < net.size(); ++i) {
    Node& n = net.node(i);
    for (auto& [key, t] : n.params) {
      if (n.op == OpKind::kBatchNorm && (key == "weight" || key == "running_var")) {
        for (float& v : t.data) v = pos(rng);
      } else if (key != "weight") {
        for (float& v : t.data) v = sym(rng);
      }
    }
  }
}

/// The test network: every op kind the executor runs, with grouped, depthwise, strided and
/// dilated convolutions, a residual add and a concat, and a ceil-mode pool.
Network make_test_net() {
  Builder b({3, 12, 12}, 7);
  int c1 = b.conv("c1", b.input(), 8, 3, 1, -1, 1, /*bias=*/true);
  int x = b.relu("r1", b.batch_norm("bn1", c1));
  int c2 = b.conv("c2", x, 8, 3, 2, 1, /*groups=*/2);  // 8x6x6
  int r2 = b.relu6("r2", b.batch_norm("bn2", c2));
  int dw = b.conv("dw", r2, 8, 3, 1, -1, /*groups=*/8, /*bias=*/false, /*dilation=*/2);
  int h = b.hardswish("h", b.batch_norm("bn3", dw));
  int sum = b.add("sum", h, r2);
  int c3 = b.conv("c3", sum, 4, 1, 1, 0, 1, /*bias=*/true);
  int cat = b.concat("cat", {sum, c3});                             // 12x6x6
  int mp = b.max_pool("mp", cat, 3, 2, 1);                          // 12x3x3
  int ap = b.avg_pool("ap", mp, 2, 1);                              // 12x2x2
  int gap = b.adaptive_avg_pool("gap", ap, 1, 1);                   // 12x1x1
  int cat2 = b.concat("cat2", {gap, b.max_pool("gmp", ap, 2, 2)});  // 24x1x1
  int flat = b.flatten("flat", cat2);
  int fc1 = b.linear("fc1", flat, 16);
  int drop = b.dropout("drop", b.relu("r3", fc1), 0.5);
  Network net = b.finish(b.linear("fc2", drop, 5, /*bias=*/false));
  randomize(net, 11);
  return net;
}

at::Tensor param(const Network& net, const std::string& node, const std::string& key) {
  return to_torch(net.node(net.find(node)).params.at(key));
}

/// The reference forward pass, written directly against LibTorch. BN running statistics are
/// passed in so that train mode updates them like the executor should.
struct Reference {
  const Network& net;
  std::map<std::string, std::pair<at::Tensor, at::Tensor>> stats;  // bn -> (mean, var)

  explicit Reference(const Network& n) : net(n) {
    for (const std::string bn : {"bn1", "bn2", "bn3"})
      stats[bn] = {param(net, bn, "running_mean"), param(net, bn, "running_var")};
  }

  at::Tensor bn(const at::Tensor& x, const std::string& name, bool training) {
    return torch::batch_norm(x, param(net, name, "weight"), param(net, name, "bias"),
                             stats[name].first, stats[name].second, training, 0.1, 1e-5, false);
  }

  at::Tensor forward(const at::Tensor& input, bool training) {
    auto c1 = torch::conv2d(input, param(net, "c1", "weight"), param(net, "c1", "bias"), 1, 1);
    auto x = torch::relu(bn(c1, "bn1", training));
    auto c2 = torch::conv2d(x, param(net, "c2", "weight"), {}, 2, 1, 1, 2);
    auto r2 = torch::clamp(bn(c2, "bn2", training), 0, 6);
    auto dw = torch::conv2d(r2, param(net, "dw", "weight"), {}, 1, 2, 2, 8);
    auto h = torch::hardswish(bn(dw, "bn3", training));
    auto sum = h + r2;
    auto c3 = torch::conv2d(sum, param(net, "c3", "weight"), param(net, "c3", "bias"));
    auto cat = torch::cat({sum, c3}, 1);
    auto mp = torch::max_pool2d(cat, 3, 2, 1);
    auto ap = torch::avg_pool2d(mp, 2, 1);
    auto gap = torch::adaptive_avg_pool2d(ap, {1, 1});
    auto cat2 = torch::cat({gap, torch::max_pool2d(ap, 2, 2)}, 1);
    auto fc1 =
        torch::linear(cat2.flatten(1), param(net, "fc1", "weight"), param(net, "fc1", "bias"));
    auto drop = torch::dropout(torch::relu(fc1), 0.5, training);
    return torch::linear(drop, param(net, "fc2", "weight"));
  }
};

at::Tensor random_batch(int64_t n, uint64_t seed, const std::vector<int64_t>& chw = {3, 12, 12}) {
  torch::manual_seed(seed);
  std::vector<int64_t> shape = {n};
  shape.insert(shape.end(), chw.begin(), chw.end());
  return torch::randn(shape);
}

}  // namespace

TEST_CASE("to_torch and from_torch copy exactly", "[graph][executor]") {
  Tensor t({2, 3});
  for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = 0.25f * static_cast<float>(i) - 1.0f;
  const at::Tensor a = to_torch(t);
  CHECK(a.sizes() == at::IntArrayRef({2, 3}));
  CHECK(a[1][2].item<float>() == t.data[5]);
  const Tensor back = from_torch(a.t().contiguous().t());  // non-trivial strides copy too
  CHECK(back.shape == t.shape);
  CHECK(back.data == t.data);
  // to_torch copies: changing the torch tensor leaves the graph tensor alone.
  a.fill_(3.0f);
  CHECK(t.data[0] == -1.0f);
}

TEST_CASE("eval-mode outputs equal a hand-written LibTorch reference", "[graph][executor]") {
  const Network net = make_test_net();
  Executor ex(net);
  CHECK_FALSE(ex.training());
  Reference ref(net);
  const at::Tensor x = random_batch(kBatch, 1);
  torch::NoGradGuard no_grad;
  const at::Tensor y = ex.forward(x);
  CHECK(y.sizes() == at::IntArrayRef({kBatch, 5}));
  CHECK(max_abs_diff(y, ref.forward(x, false)) < kTolerance);
  // Eval mode is deterministic (dropout off) and leaves BN statistics alone.
  CHECK(max_abs_diff(ex.forward(x), y) == 0.0);
  Network copy = net;
  ex.write_back(copy);
  CHECK(copy.node(copy.find("bn1")).params.at("running_mean").data ==
        net.node(net.find("bn1")).params.at("running_mean").data);
}

TEST_CASE("ceil-mode and padded pools match LibTorch", "[graph][executor]") {
  Network net({2, 7, 7});
  auto add_pool = [&](const std::string& name, OpKind op, int x, int64_t k, int64_t s, int64_t p,
                      bool ceil_mode) {
    Node n;
    n.name = name;
    n.op = op;
    n.inputs = {x};
    n.attrs.kernel = {k, k};
    n.attrs.stride = {s, s};
    n.attrs.padding = {p, p};
    n.attrs.ceil_mode = ceil_mode;
    return net.add(n);
  };
  const int a = add_pool("a", OpKind::kMaxPool, 0, 2, 2, 1, true);  // 4x4
  add_pool("b", OpKind::kAvgPool, a, 2, 3, 0, true);                // 2x2 (floor: 1x1)
  const at::Tensor x = random_batch(3, 2, {2, 7, 7});
  const at::Tensor expected =
      torch::avg_pool2d(torch::max_pool2d(x, 2, 2, 1, 1, true), 2, 3, 0, true);
  Executor ex(net);
  const at::Tensor y = ex.forward(x);
  const auto shapes = tightfit::graph::infer_shapes(net);
  CHECK(shapes.back() == tightfit::graph::Shape{2, 2, 2});
  CHECK(max_abs_diff(y, expected) < kTolerance);
}

TEST_CASE("seeded dropout draws its masks from the executor's own generator", "[graph][executor]") {
  Builder b({64}, 1);
  const Network net = b.finish(b.dropout("drop", b.input(), 0.25));
  const at::Tensor x = torch::rand({32, 64}) + 1.0;  // no zeros of its own
  auto run = [&](uint64_t seed, uint64_t global_seed) {
    Executor ex(net);
    ex.train(true);
    ex.seed_dropout(seed);
    torch::manual_seed(global_seed);
    return ex.forward(x);
  };
  const at::Tensor y = run(3, 100);
  // The global generator plays no part; the executor's seed does.
  CHECK(max_abs_diff(run(3, 200), y) == 0.0);
  CHECK(max_abs_diff(run(4, 100), y) > 0.5);
  // torch::dropout's semantics: each value dropped or scaled by 1 / (1 - p), about p dropped.
  const at::Tensor dropped = y == 0;
  CHECK(max_abs_diff(torch::where(dropped, torch::zeros_like(x), x / 0.75), y) < 1e-6);
  CHECK(dropped.to(torch::kFloat).mean().item<float>() == Approx(0.25).margin(0.05));
}

TEST_CASE("train mode uses batch statistics and updates running statistics like LibTorch",
          "[graph][executor]") {
  const Network net = make_test_net();
  Executor ex(net);
  ex.train(true);
  CHECK(ex.training());
  Reference ref(net);
  const at::Tensor x = random_batch(kBatch, 3);
  // Same seed before both passes: dropout draws the same mask.
  torch::manual_seed(42);
  const at::Tensor y = ex.forward(x);
  torch::manual_seed(42);
  const at::Tensor expected = ref.forward(x, true);
  CHECK(max_abs_diff(y, expected) < kTolerance);

  Network updated = net;
  ex.write_back(updated);
  for (const std::string bn : {"bn1", "bn2", "bn3"}) {
    INFO("batch norm " << bn);
    const at::Tensor mean = param(updated, bn, "running_mean");
    const at::Tensor var = param(updated, bn, "running_var");
    CHECK(max_abs_diff(mean, ref.stats[bn].first) < kTolerance);
    CHECK(max_abs_diff(var, ref.stats[bn].second) < kTolerance);
    // The statistics really moved.
    CHECK(max_abs_diff(mean, param(net, bn, "running_mean")) > 1e-3);
  }
}

TEST_CASE("gradients reach every parameter", "[graph][executor]") {
  const Network net = make_test_net();
  Executor ex(net);
  ex.train(true);
  const auto params = ex.parameters();
  // conv weights (4) + conv biases (2) + BN weight and bias (3 x 2) + linear (2 weights, 1 bias)
  CHECK(params.size() == 4 + 2 + 6 + 3);
  torch::manual_seed(5);
  const at::Tensor loss = ex.forward(random_batch(kBatch, 4)).pow(2).sum();
  loss.backward();
  for (size_t i = 0; i < params.size(); ++i) {
    INFO("parameter " << i);
    CHECK(params[i].requires_grad());
    REQUIRE(params[i].grad().defined());
    CHECK(params[i].grad().abs().sum().item<double>() > 0.0);
  }
}

TEST_CASE("write_back copies trained parameters into the network", "[graph][executor]") {
  const Network net = make_test_net();
  Executor ex(net);

  // Unchanged: the network comes back bit for bit.
  Network same = net;
  ex.write_back(same);
  for (int i = 0; i < net.size(); ++i)
    for (const auto& [key, t] : net.node(i).params) {
      INFO(net.node(i).name << "." << key);
      CHECK(same.node(i).params.at(key).shape == t.shape);
      CHECK(same.node(i).params.at(key).data == t.data);
    }

  // One SGD-like step: the written-back network runs like the executor that was trained.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : ex.parameters()) p.mul_(0.9).add_(0.01);
  }
  Network trained = net;
  ex.write_back(trained);
  CHECK(trained.node(trained.find("fc1")).params.at("bias").data !=
        net.node(net.find("fc1")).params.at("bias").data);
  Executor again(trained);
  torch::NoGradGuard no_grad;
  const at::Tensor x = random_batch(kBatch, 6);
  CHECK(max_abs_diff(again.forward(x), ex.forward(x)) == 0.0);
}

TEST_CASE("BN recalibration averages the batch statistics with equal weight", "[graph][executor]") {
  const Network net = make_test_net();
  Executor ex(net);
  constexpr int kBatches = 3;
  std::vector<at::Tensor> batches;
  for (int i = 0; i < kBatches; ++i) batches.push_back(random_batch(kBatch, 100 + i));

  ex.begin_bn_recalibration();
  ex.train(true);
  {
    torch::NoGradGuard no_grad;
    for (const auto& x : batches) ex.forward(x);
  }
  ex.end_bn_recalibration();
  ex.train(false);

  // bn1 sees the first convolution's output: its running mean must be the mean of the per-batch
  // channel means, its running variance the mean of the per-batch unbiased variances.
  at::Tensor mean_sum = torch::zeros({8}), var_sum = torch::zeros({8});
  for (const auto& x : batches) {
    const auto c1 = torch::conv2d(x, param(net, "c1", "weight"), param(net, "c1", "bias"), 1, 1);
    mean_sum += c1.mean({0, 2, 3});
    var_sum += c1.var({0, 2, 3}, /*unbiased=*/true);
  }
  Network recal = net;
  ex.write_back(recal);
  CHECK(max_abs_diff(param(recal, "bn1", "running_mean"), mean_sum / kBatches) < kTolerance);
  CHECK(max_abs_diff(param(recal, "bn1", "running_var"), var_sum / kBatches) < 1e-4);

  // Eval mode now uses the recalibrated statistics: the same as a fresh executor on `recal`.
  torch::NoGradGuard no_grad;
  Executor fresh(recal);
  const at::Tensor x = random_batch(kBatch, 7);
  CHECK(max_abs_diff(ex.forward(x), fresh.forward(x)) < kTolerance);

  // After recalibration the node's own momentum (0.1) applies again.
  ex.train(true);
  ex.forward(batches[0]);
  Network after = recal;
  ex.write_back(after);
  const auto c1 =
      torch::conv2d(batches[0], param(net, "c1", "weight"), param(net, "c1", "bias"), 1, 1);
  const at::Tensor expected = 0.9 * param(recal, "bn1", "running_mean") + 0.1 * c1.mean({0, 2, 3});
  CHECK(max_abs_diff(param(after, "bn1", "running_mean"), expected) < kTolerance);
}

TEST_CASE("the executor rejects malformed networks", "[graph][executor]") {
  Network net({3, 8, 8});
  Node n;
  n.name = "fc";
  n.op = OpKind::kLinear;
  n.inputs = {0};
  n.attrs.in_channels = 192;
  n.attrs.out_channels = 2;
  n.params["weight"] = Tensor({2, 192});
  net.add(n);
  REQUIRE_THROWS_AS(Executor(net), tightfit::InputError);
  REQUIRE_THROWS_WITH(Executor(net), Catch::Contains("node 'fc'"));
}

TEST_CASE("set_parameter runs supplied tensors and passes gradients back to them",
          "[graph][executor]") {
  // y = W x + b on a 3-feature input: small enough to compute by hand.
  Network net({3});
  Node fc;
  fc.name = "fc";
  fc.op = OpKind::kLinear;
  fc.inputs = {0};
  fc.attrs.in_channels = 3;
  fc.attrs.out_channels = 2;
  fc.attrs.bias = true;
  fc.params["weight"] = Tensor({2, 3}, 0.5f);
  fc.params["bias"] = Tensor({2}, 0.0f);
  net.add(fc);
  Executor ex(net);
  const at::Tensor x = torch::tensor({1.0f, 2.0f, 3.0f}).reshape({1, 3});

  // The supplied weight is computed from a leaf (as a PruningNet generates it): W = 2 * A.
  const at::Tensor a =
      torch::tensor({1.0f, 0.0f, -1.0f, 0.5f, 0.5f, 0.5f}).reshape({2, 3}).set_requires_grad(true);
  const at::Tensor b = torch::tensor({0.25f, -1.0f}).set_requires_grad(true);
  ex.set_parameter("fc", "weight", 2 * a);
  ex.set_parameter("fc", "bias", b);
  const at::Tensor y = ex.forward(x);
  // Row 0: 2 * (1 - 3) + 0.25 = -3.75; row 1: 2 * (0.5 + 1 + 1.5) - 1 = 5.
  CHECK(max_abs_diff(y, torch::tensor({-3.75f, 5.0f}).reshape({1, 2})) < kTolerance);

  // d(sum y)/dA = 2 x for each row; d(sum y)/db = 1.
  y.sum().backward();
  REQUIRE(a.grad().defined());
  CHECK(max_abs_diff(a.grad(), torch::tensor({2.0f, 4.0f, 6.0f}).repeat({2, 1})) < kTolerance);
  CHECK(max_abs_diff(b.grad(), torch::ones({2})) < kTolerance);

  // write_back stores what was supplied.
  Network back = net;
  ex.write_back(back);
  CHECK(back.node(1).params.at("bias").data == std::vector<float>{0.25f, -1.0f});
}

TEST_CASE("set_parameter rejects unknown layers, parameters and wrong shapes",
          "[graph][executor]") {
  const Network net = make_test_net();
  Executor ex(net);
  REQUIRE_THROWS_WITH(ex.set_parameter("nope", "weight", torch::zeros({8, 3, 3, 3})),
                      Catch::Contains("no such layer"));
  REQUIRE_THROWS_WITH(ex.set_parameter("c2", "bias", torch::zeros({8})),
                      Catch::Contains("has no parameter 'bias'") && Catch::Contains("weight"));
  REQUIRE_THROWS_WITH(ex.set_parameter("r1", "weight", torch::zeros({1})),
                      Catch::Contains("it has: none"));
  REQUIRE_THROWS_WITH(ex.set_parameter("c1", "weight", torch::zeros({4, 3, 3, 3})),
                      Catch::Contains("must have shape") && Catch::Contains("4x3x3x3"));
  REQUIRE_THROWS_AS(ex.set_parameter("bn1", "running_var", torch::ones({7})), tightfit::InputError);
  // A correct shape is accepted and used: zero BN scale zeroes bn1's output.
  ex.set_parameter("bn1", "weight", torch::zeros({8}));
  ex.set_parameter("bn1", "bias", torch::zeros({8}));
  torch::NoGradGuard no_grad;
  const auto values = ex.forward_all(random_batch(kBatch, 9));
  CHECK(values[net.find("bn1")].abs().max().item<double>() == 0.0);
}
