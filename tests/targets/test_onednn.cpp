#include <torch/torch.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <random>

#include "core/errors.h"
#include "datasets/batches.h"
#include "datasets/fashion_mnist.h"
#include "graph/executor.h"
#include "graph/serialize.h"
#include "models/zoo.h"
#include "policies/compress.h"
#include "targets/int8.h"
#include "targets/onednn_cpu.h"
#include "targets/onednn_engine.h"
#include "tests/targets/int8_fixtures.h"

using namespace tightfit;

namespace {

struct Comparison {
  double rel_error = 0;     ///< max |engine - reference| / max |reference|
  double argmax_agree = 0;  ///< share of rows with the same argmax
};

Comparison compare(const graph::Network& net, int64_t batch, uint64_t seed = 1) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> shape = {batch};
  for (int64_t d : net.input_shape()) shape.push_back(d);
  auto gen = at::detail::createCPUGenerator(seed);
  const auto x = torch::randn(shape, gen).contiguous();
  graph::Executor ex(net);
  ex.train(false);
  const auto ref = ex.forward(x).contiguous();

  targets::OneDnnEngine engine(net, batch, "fp32");
  const auto out = engine.run(x.data_ptr<float>());
  REQUIRE(engine.output_shape() == ref.sizes().vec());
  REQUIRE(static_cast<int64_t>(out.size()) == ref.numel());

  const auto got = torch::from_blob(const_cast<float*>(out.data()), ref.sizes()).clone();
  Comparison c;
  const double scale = ref.abs().max().item<double>();
  c.rel_error = (got - ref).abs().max().item<double>() / std::max(scale, 1e-12);
  const auto flat_ref = ref.reshape({batch, -1}), flat_got = got.reshape({batch, -1});
  c.argmax_agree =
      flat_ref.argmax(1).eq(flat_got.argmax(1)).to(torch::kFloat).mean().item<double>();
  return c;
}

const std::vector<std::string> kSmallModels = {"vgg_small", "resnet8", "resnet20",
                                               "mobilenetv2_small"};

graph::Network zoo(const std::string& name) {
  return models::make_model(name, models::default_options(name));
}

policies::Policy pruning_policy(const graph::Network& net, double keep) {
  policies::Policy p;
  for (const auto& ch : policies::decision_points(net).channels) p.keep[ch.id] = keep;
  return p;
}

policies::Policy lowrank_policy(const graph::Network& net, const std::string& conv) {
  policies::Policy p;
  p.factorization.conv = conv;
  p.factorization.allow_larger = true;  // factor every layer, whatever it costs
  for (const auto& l : policies::decision_points(net).layers)
    if (l.full_rank > 0) p.rank[l.name] = 0.5;
  return p;
}

// A network of everything the zoo does not exercise: dilation, grouped (non-depthwise) convs,
// standalone batch norm and activations, 3-input add, concat, ceil-mode and padded pooling,
// hardswish, adaptive pooling to 2x2, bias on convs, BN after linear-free branches.
graph::Network odd_network() {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  auto tensor = [&](graph::Shape s, float offset = 0.0f) {
    graph::Tensor t(s);
    for (float& v : t.data) v = normal(rng) + offset;
    return t;
  };
  graph::Network net({3, 13, 13});
  auto conv = [&](const std::string& name, int x, int64_t in, int64_t out, int64_t k,
                  int64_t stride, int64_t pad, int64_t dil, int64_t groups, bool bias) {
    graph::Node n;
    n.name = name;
    n.op = graph::OpKind::kConv2d;
    n.inputs = {x};
    n.attrs.in_channels = in;
    n.attrs.out_channels = out;
    n.attrs.kernel = {k, k};
    n.attrs.stride = {stride, stride};
    n.attrs.padding = {pad, pad};
    n.attrs.dilation = {dil, dil};
    n.attrs.groups = groups;
    n.attrs.bias = bias;
    n.params["weight"] = tensor({out, in / groups, k, k});
    if (bias) n.params["bias"] = tensor({out});
    return net.add(n);
  };
  auto simple = [&](const std::string& name, graph::OpKind op, std::vector<int> inputs) {
    graph::Node n;
    n.name = name;
    n.op = op;
    n.inputs = std::move(inputs);
    return n;
  };
  auto bn = [&](const std::string& name, int x, int64_t c) {
    graph::Node n = simple(name, graph::OpKind::kBatchNorm, {x});
    n.params["weight"] = tensor({c}, 1.0f);
    n.params["bias"] = tensor({c});
    n.params["running_mean"] = tensor({c});
    graph::Tensor var = tensor({c});
    for (float& v : var.data) v = std::abs(v) + 0.5f;
    n.params["running_var"] = var;
    return net.add(n);
  };
  int a = conv("c1", 0, 3, 12, 3, 1, 2, 2, 1, true);         // dilated, 13x13
  int r = net.add(simple("r1", graph::OpKind::kReLU, {a}));  // used twice: not fused
  int b = conv("c2", r, 12, 12, 3, 1, 1, 1, 3, false);       // grouped
  int b_bn = bn("bn2", b, 12);
  int b_act = net.add(simple("h2", graph::OpKind::kHardswish, {b_bn}));
  int c = conv("c3", r, 12, 12, 1, 1, 0, 1, 1, true);
  int c_bn = bn("bn3", c, 12);  // conv has one consumer, BN has two: folded, activation not
  int c_act = net.add(simple("r6", graph::OpKind::kReLU6, {c_bn}));
  int sum = net.add(simple("sum", graph::OpKind::kAdd, {b_act, c_act, c_bn}));
  int lone_bn = bn("bn4", sum, 12);  // not after a conv
  int cat = net.add(simple("cat", graph::OpKind::kConcat, {lone_bn, r}));
  graph::Node mp = simple("mp", graph::OpKind::kMaxPool, {cat});
  mp.attrs.kernel = {3, 3};
  mp.attrs.stride = {2, 2};
  mp.attrs.ceil_mode = true;  // 13 -> 6
  int pooled = net.add(mp);
  graph::Node ap = simple("ap", graph::OpKind::kAvgPool, {pooled});
  ap.attrs.kernel = {3, 3};
  ap.attrs.stride = {1, 1};
  ap.attrs.padding = {1, 1};  // count_include_pad: 6 -> 6
  int avg = net.add(ap);
  int d = conv("c5", avg, 24, 16, 3, 2, 1, 1, 1, false);  // 6 -> 3
  int d_act = net.add(simple("r5", graph::OpKind::kReLU, {d}));
  graph::Node ceil_avg = simple("ap2", graph::OpKind::kAvgPool, {d_act});
  ceil_avg.attrs.kernel = {2, 2};
  ceil_avg.attrs.stride = {2, 2};
  ceil_avg.attrs.ceil_mode = true;  // 3 -> 2, last window partial and unpadded
  int avg2 = net.add(ceil_avg);
  graph::Node gap = simple("gap", graph::OpKind::kAdaptiveAvgPool, {avg2});
  gap.attrs.output_size = {1, 1};
  int g = net.add(gap);
  int f = net.add(simple("flat", graph::OpKind::kFlatten, {g}));
  int drop = net.add(simple("drop", graph::OpKind::kDropout, {f}));
  graph::Node fc = simple("fc", graph::OpKind::kLinear, {drop});
  fc.attrs.in_channels = 16;
  fc.attrs.out_channels = 5;
  fc.attrs.bias = true;
  fc.params["weight"] = tensor({5, 16});
  fc.params["bias"] = tensor({5});
  net.add(fc);
  return net;
}

using test_support::fashion;
using test_support::quantized_8bit;

struct Int8Run {
  double agree = 0;          ///< share of images with the same top-1 class
  double engine_acc = 0;     ///< top-1 accuracy of the int8 engine
  double reference_acc = 0;  ///< of LibTorch's fake-quant simulation
  double rel_error = 0;      ///< max |engine - reference| / max |reference| over all logits
  int64_t int8_layers = 0, fp32_layers = 0;
  std::string precision;
};

/// The int8 engine against LibTorch's fake-quant simulation on the first `count` test images.
Int8Run int8_vs_libtorch(const graph::Network& net, int64_t count = 2000, int64_t batch = 100) {
  targets::OneDnnEngine engine(net, batch, "int8");
  Int8Run r;
  r.int8_layers = engine.int8_layers();
  r.fp32_layers = engine.fp32_layers();
  r.precision = engine.precision();
  const auto a = test_support::agreement_on_fashion(
      net,
      [&](const at::Tensor& x) {
        auto out = engine.run(x.data_ptr<float>());
        return torch::from_blob(out.data(), engine.output_shape()).clone();
      },
      count, batch);
  r.agree = a.agree;
  r.engine_acc = a.backend_acc;
  r.reference_acc = a.reference_acc;
  r.rel_error = a.rel_error;
  return r;
}

void check_int8(const std::string& what, const graph::Network& net, int weight_bits = 8) {
  const auto c = quantized_8bit(net, weight_bits);
  const auto r = int8_vs_libtorch(c.net);
  INFO(what << ", " << weight_bits << "-bit weights: agreement " << r.agree << ", accuracy "
            << r.engine_acc << " vs " << r.reference_acc << ", rel error " << r.rel_error << ", "
            << r.int8_layers << " int8 / " << r.fp32_layers << " fp32 layers, " << r.precision);
  CHECK(r.int8_layers + r.fp32_layers > 0);
  if (weight_bits <= 7 || targets::OneDnnEngine::exact_full_range_int8()) {
    CHECK(r.int8_layers > 0);
    // The first conv reads signed (normalized) pixels: it stays fp32.
    CHECK(r.precision == "int8+fp32");
  } else {
    // Activation codes reach 255 and weight codes 127: without VNNI that would saturate, so
    // every layer falls back to fp32.
    CHECK(r.int8_layers == 0);
    CHECK(r.precision == "fp32");
  }
  CHECK(r.agree >= 0.99);
  CHECK(std::abs(r.engine_acc - r.reference_acc) <= 0.005);
}

}  // namespace

TEST_CASE("oneDNN fp32 matches LibTorch on the small zoo models", "[onednn]") {
  for (const auto& name : kSmallModels) {
    const auto net = zoo(name);
    for (int64_t batch : {1, 4}) {
      INFO(name << " batch " << batch);
      CHECK(compare(net, batch).rel_error < 1e-4);
    }
  }
}

TEST_CASE("oneDNN fp32 matches LibTorch on pruned small models", "[onednn]") {
  for (const auto& name : kSmallModels) {
    const auto net = zoo(name);
    const auto c = policies::apply(net, pruning_policy(net, 0.5));
    REQUIRE(c.net.num_params() < net.num_params());
    for (int64_t batch : {1, 4}) {
      INFO(name << " pruned, batch " << batch);
      CHECK(compare(c.net, batch).rel_error < 1e-4);
    }
  }
}

TEST_CASE("oneDNN fp32 matches LibTorch on factorized small models", "[onednn]") {
  for (const std::string conv : {"tucker2", "spatial"}) {
    for (const auto& name : kSmallModels) {
      const auto net = zoo(name);
      const auto c = policies::apply(net, lowrank_policy(net, conv));
      REQUIRE(c.net.size() > net.size());
      for (int64_t batch : {1, 4}) {
        INFO(name << " " << conv << ", batch " << batch);
        CHECK(compare(c.net, batch).rel_error < 1e-4);
      }
    }
  }
}

TEST_CASE("oneDNN fp32 matches LibTorch on odd layers (dilation, groups, concat, pools)",
          "[onednn]") {
  const auto net = odd_network();
  for (int64_t batch : {1, 3}) {
    INFO("batch " << batch);
    CHECK(compare(net, batch).rel_error < 1e-4);
  }
}

TEST_CASE("oneDNN fp32 matches LibTorch when the output is inside the network", "[onednn]") {
  // A feature extractor: the output is a BN, a ReLU or a convolution that the engine would
  // otherwise fuse into its producer or into its reader (found by the fuzz test of issue 19).
  auto net = zoo("resnet8");
  for (const auto& n : net.nodes()) {
    if (n.op != graph::OpKind::kReLU && n.op != graph::OpKind::kBatchNorm &&
        n.op != graph::OpKind::kConv2d)
      continue;
    graph::Network cut = net;
    cut.set_output(cut.find(n.name));
    INFO("output " << n.name);
    CHECK(compare(cut, 2).rel_error < 1e-4);
  }
}

TEST_CASE("oneDNN compiles once: BN folded, activations fused, runs repeatable", "[onednn]") {
  const auto net = zoo("resnet20");
  int convs = 0;
  for (const auto& n : net.nodes()) convs += n.op == graph::OpKind::kConv2d;
  targets::OneDnnEngine engine(net, 2);
  // One step per conv (BN and ReLU fused), per residual add (ReLU fused), the head and a few
  // reorders: far fewer than the graph's nodes.
  CHECK(engine.num_steps() < convs + convs / 2 + 8);
  CHECK(engine.num_steps() < net.size() / 2);
  CHECK(engine.output_shape() == graph::Shape{2, 10});
  std::vector<float> x(2 * 28 * 28);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.1f * static_cast<float>(i));
  const auto first = engine.run(x.data());
  CHECK(engine.run(x.data()) == first);
}

TEST_CASE("oneDNN fp32 matches LibTorch on an ImageNet ResNet-18", "[onednn]") {
  const auto net = models::make_model("resnet18", models::ZooOptions{3, 64, 1000, 0});
  CHECK(compare(net, 1).rel_error < 1e-4);
}

TEST_CASE("oneDNN runs fake-quantized activations like LibTorch", "[onednn]") {
  for (const std::string name : {"resnet20", "mobilenetv2_small"}) {
    const auto net = zoo(name);
    policies::Policy p;
    for (const auto& l : policies::decision_points(net).layers) p.act_bits[l.name] = 8;
    policies::Calibration calib;
    auto gen = at::detail::createCPUGenerator(3);
    for (int i = 0; i < 2; ++i) {
      calib.images.push_back(torch::randn({8, 1, 28, 28}, gen));
      calib.labels.push_back(torch::zeros({8}, torch::kLong));
    }
    policies::ApplyOptions opts;
    opts.calibration = &calib;
    const auto c = policies::apply(net, p, opts);
    int fake_quants = 0;
    for (const auto& n : c.net.nodes()) fake_quants += n.op == graph::OpKind::kFakeQuant;
    REQUIRE(fake_quants > 0);
    // An fp32 difference in the last bit can flip one rounding step of a fake_quant node.
    const auto cmp = compare(c.net, 8);
    INFO(name);
    CHECK(cmp.rel_error < 2e-2);
    CHECK(cmp.argmax_agree >= 0.875);
  }
}

TEST_CASE("cpu-onednn measures and records its context", "[onednn]") {
  targets::OneDnnCpuTarget target;
  CHECK(target.name() == "cpu-onednn");
  const auto c = policies::apply(zoo("resnet8"), {});
  targets::MeasureOptions opts;
  opts.threads = 1;
  opts.warmup_runs = 2;
  opts.min_repeats = 7;
  opts.min_time_ms = 1;
  opts.batch = 2;
  const auto m = target.measure(c, opts);
  REQUIRE(m.ok());
  CHECK(m.samples >= 7);
  CHECK(m.median_ms > 0);
  CHECK(m.min_ms <= m.median_ms);
  CHECK(m.threads == 1);
  CHECK(m.batch == 2);
  CHECK(m.target == "cpu-onednn");
  CHECK(m.precision == "fp32");

  opts.threads = 2;
  const auto m2 = target.measure(c, opts);
  REQUIRE(m2.ok());
  CHECK(m2.threads == 2);
}

TEST_CASE("cpu-onednn reports unsupported precisions and networks as failed measurements",
          "[onednn]") {
  targets::OneDnnCpuTarget target;
  const auto c = policies::apply(zoo("resnet8"), {});
  targets::MeasureOptions opts;
  opts.min_repeats = 1;
  opts.warmup_runs = 0;
  opts.precision = "fp8";
  targets::Measurement m;
  REQUIRE_NOTHROW(m = target.measure(c, opts));
  CHECK_FALSE(m.ok());
  CHECK_THAT(m.error, Catch::Contains("fp8") && Catch::Contains("fp32, int8, bf16"));
}

TEST_CASE("cpu-onednn pools adaptively to sizes that do not divide the input, or enlarge it",
          "[onednn]") {
  // PyTorch's overlapping windows (5 -> 3) and VGG's 7x7 pooling of a 2x2 map (2 -> 7, 3 -> 1).
  for (const auto& [in, out] :
       std::vector<std::pair<std::array<int64_t, 2>, std::array<int64_t, 2>>>{
           {{5, 5}, {3, 3}}, {{2, 2}, {7, 7}}, {{3, 6}, {1, 4}}}) {
    INFO(in[0] << "x" << in[1] << " -> " << out[0] << "x" << out[1]);
    graph::Network net({4, in[0], in[1]});
    graph::Node gap;
    gap.name = "gap";
    gap.op = graph::OpKind::kAdaptiveAvgPool;
    gap.inputs = {0};
    gap.attrs.output_size = out;
    net.add(gap);
    const auto x = torch::randn({3, 4, in[0], in[1]});
    targets::OneDnnEngine engine(net, 3);
    const auto got = engine.run(x.data_ptr<float>());
    const auto want = torch::adaptive_avg_pool2d(x, {out[0], out[1]}).contiguous();
    REQUIRE(got.size() == static_cast<size_t>(want.numel()));
    for (size_t k = 0; k < got.size(); ++k)
      CHECK(got[k] == Approx(want.data_ptr<float>()[k]).margin(1e-5));
  }
}

// Hidden (run with "[.benchmark]"): an informal engine-vs-LibTorch figure, printed.
TEST_CASE("cpu-onednn vs cpu-libtorch on resnet20, batch 1, 1 thread", "[.benchmark][onednn]") {
  const auto c = policies::apply(zoo("resnet20"), {});
  targets::MeasureOptions opts;
  opts.threads = 1;
  opts.min_time_ms = 500;
  for (const std::string name : {"cpu-onednn", "cpu-libtorch"}) {
    std::unique_ptr<targets::Target> target;
    if (name == "cpu-onednn")
      target = std::make_unique<targets::OneDnnCpuTarget>();
    else
      target = targets::make_target(name);
    const auto m = target->measure(c, opts);
    REQUIRE(m.ok());
    WARN(name << ": median " << m.median_ms << " ms, iqr " << m.iqr_ms << " ms, " << m.samples
              << " samples");
  }
}

TEST_CASE("oneDNN int8 agrees with LibTorch's fake-quant simulation on Fashion-MNIST", "[onednn]") {
  for (const std::string name : {"vgg_small", "resnet8"})
    check_int8(name + " (random weights)", zoo(name));
  // 6-bit weights run in int8 on every CPU (codes within [-64, 63]).
  check_int8("resnet8 (random weights)", zoo("resnet8"), 6);
  const auto trained = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() /
                       "runs" / "models" / "vgg_small.tfn";
  if (std::filesystem::exists(trained))
    check_int8("trained vgg_small", graph::load_network(trained.string()));
  else
    WARN("no " << trained << ": trained vgg_small not checked");
}

TEST_CASE("oneDNN int8 without fake_quant nodes runs fp32 and says so", "[onednn]") {
  const auto net = zoo("resnet8");
  int64_t weighted = 0;
  for (const auto& n : net.nodes())
    weighted += n.op == graph::OpKind::kConv2d || n.op == graph::OpKind::kLinear;
  targets::OneDnnEngine engine(net, 2, "int8");
  CHECK(engine.int8_layers() == 0);
  CHECK(engine.fp32_layers() == weighted);
  CHECK(engine.precision() == "fp32");

  targets::OneDnnCpuTarget target;
  const auto caps = target.capabilities().precisions;
  CHECK(std::find(caps.begin(), caps.end(), "int8") != caps.end());
  targets::MeasureOptions opts;
  opts.precision = "int8";
  opts.warmup_runs = 1;
  opts.min_repeats = 3;
  opts.min_time_ms = 1;
  const auto m = target.measure(policies::apply(net, {}), opts);
  REQUIRE(m.ok());
  CHECK(m.precision == "fp32");

  // With fake-quantized layers the measurement says what ran.
  const auto q = target.measure(quantized_8bit(net), opts);
  REQUIRE(q.ok());
  CHECK((q.precision == "int8+fp32" || q.precision == "fp32"));
}

// Hidden (run with "[.benchmark]"): int8 against fp32 on an 8-bit resnet20, batch 1, 1 thread.
TEST_CASE("cpu-onednn int8 vs fp32 on resnet20, batch 1, 1 thread", "[.benchmark][onednn]") {
  const auto c = quantized_8bit(zoo("resnet20"));
  targets::OneDnnCpuTarget target;
  targets::MeasureOptions opts;
  opts.threads = 1;
  opts.min_time_ms = 500;
  for (const std::string precision : {"fp32", "int8"}) {
    opts.precision = precision;
    const auto m = target.measure(c, opts);
    REQUIRE(m.ok());
    WARN(precision << " (ran " << m.precision << "): median " << m.median_ms << " ms, iqr "
                   << m.iqr_ms << " ms, " << m.samples << " samples");
  }
}

TEST_CASE("bf16 precision runs bf16-weight layers in bf16 where the CPU has AVX512-BF16",
          "[onednn][bf16]") {
  // 16-bit bf16 weights everywhere: on a CPU with bf16 dot products every conv/linear runs with
  // bf16 inputs and weights (a real bf16 kernel: its rounding of the inputs shows as a small
  // difference from the fp32 reference); elsewhere the network runs in fp32 and says so.
  torch::NoGradGuard no_grad;
  for (const std::string model : {"vgg_small", "mobilenetv2_small"}) {
    INFO(model);
    const auto net = zoo(model);
    policies::Policy bf16;
    bf16.quantization.float16 = "bf16";
    for (const auto& l : policies::decision_points(net).layers) bf16.weight_bits[l.name] = 16;
    const auto c = policies::apply(net, bf16);
    const auto layers = static_cast<int64_t>(policies::decision_points(net).layers.size());

    auto gen = at::detail::createCPUGenerator(3);
    std::vector<int64_t> shape = {2};
    for (int64_t d : c.net.input_shape()) shape.push_back(d);
    const auto x = torch::randn(shape, gen).contiguous();
    graph::Executor ex(c.net);
    ex.train(false);
    const auto ref = ex.forward(x).contiguous();
    targets::OneDnnEngine engine(c.net, 2, "bf16");
    const auto out = engine.run(x.data_ptr<float>());
    const auto got = torch::from_blob(const_cast<float*>(out.data()), ref.sizes()).clone();
    const double rel = (got - ref).abs().max().item<double>() / ref.abs().max().item<double>();
    if (targets::cpu_has_bf16()) {
      CHECK(engine.bf16_layers() == layers);
      CHECK(engine.precision() == "bf16");
      CHECK(rel < 3e-2);  // bf16 inputs: 8 bits of mantissa
      CHECK(rel > 1e-7);  // not the fp32 computation
    } else {
      CHECK(engine.bf16_layers() == 0);
      CHECK(engine.precision() == "fp32");
      CHECK(rel < 1e-5);
    }
    // fp32 weights are not bf16 values: nothing runs in bf16.
    targets::OneDnnEngine plain(net, 1, "bf16");
    CHECK(plain.bf16_layers() == 0);
    CHECK(plain.precision() == "fp32");
  }
}
