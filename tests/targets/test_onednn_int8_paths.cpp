// The oneDNN engine's int8 paths that keep data in 8 bits between layers (u8 outputs written by
// the producing primitive), FBGEMM-style reduced-range activations, kernel-only and per-step
// timing, and thread pinning during measurements.

#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <string>

#include "latency_models/lut.h"
#include "models/zoo.h"
#include "policies/quantize.h"
#include "targets/affinity.h"
#include "targets/onednn_cpu.h"
#include "targets/onednn_engine.h"
#include "tests/targets/int8_fixtures.h"

using namespace tightfit;

namespace {

graph::Network zoo(const std::string& name) {
  return models::make_model(name, models::default_options(name));
}

}  // namespace

TEST_CASE("reduce_range puts 8-bit activations on a 7-bit grid, and only 8-bit ones", "[onednn]") {
  std::vector<float> samples;
  for (int i = 0; i <= 1000; ++i) samples.push_back(static_cast<float>(i) / 100.0f);
  policies::QuantConfig config;
  CHECK(policies::calibrate_activation(samples, 8, config, true).q_max == 255);
  config.reduce_range = true;
  const auto reduced = policies::calibrate_activation(samples, 8, config, true);
  CHECK(reduced.q_max == 127);
  CHECK(reduced.scale == Approx(10.0 / 127));
  CHECK(policies::calibrate_activation(samples, 6, config, true).q_max == 63);
  // Round trip through the policy JSON.
  CHECK(policies::QuantConfig::from_json(config.to_json(), "q").reduce_range);
}

TEST_CASE("int8 with reduced-range activations runs 8-bit weights in int8 on any CPU and agrees",
          "[onednn]") {
  for (const std::string name : {"vgg_small", "resnet8", "mobilenetv2_small"}) {
    const auto c = test_support::quantized_8bit(zoo(name), 8, /*reduce_range=*/true);
    targets::OneDnnEngine engine(c.net, 100, "int8");
    const auto a = test_support::agreement_on_fashion(
        c.net,
        [&](const at::Tensor& x) {
          auto out = engine.run(x.data_ptr<float>());
          return torch::from_blob(out.data(), {static_cast<int64_t>(out.size())}).clone();
        },
        1000, 100);
    INFO(name << ": agreement " << a.agree << ", accuracy " << a.backend_acc << " vs "
              << a.reference_acc << ", " << engine.int8_layers() << " int8 / "
              << engine.fp32_layers() << " fp32 layers");
    CHECK(engine.int8_layers() > 0);
    CHECK(a.agree >= 0.99);
    CHECK(std::abs(a.backend_acc - a.reference_acc) <= 0.005);
  }
}

TEST_CASE("int8 layers feeding int8 layers write u8 codes: fewer steps, same outputs", "[onednn]") {
  // vgg_small is a chain: every conv but the last feeds a fake_quant read only by the next conv,
  // so no quantization loop or type reorder is left between them.
  const auto c = test_support::quantized_8bit(zoo("vgg_small"), 8, /*reduce_range=*/true);
  targets::OneDnnEngine engine(c.net, 1, "int8");
  const auto x = torch::randn({1, 1, 28, 28}).contiguous();
  const auto steps = engine.step_times(x.data_ptr<float>(), 3);
  REQUIRE(static_cast<int>(steps.size()) == engine.num_steps());
  int loops = 0, primitives = 0;
  for (const auto& s : steps) {
    loops += s.kind == "loop";
    primitives += s.kind == "primitive";
    CHECK(s.median_ms >= 0);
  }
  INFO(loops << " loops, " << primitives << " primitives, " << engine.int8_layers() << " int8");
  // Only the first int8 layer's input (after the fp32 first conv) is quantized by a loop.
  CHECK(loops <= 2);
  CHECK(engine.int8_layers() >= 3);
}

TEST_CASE("kernel-only timing runs one node's primitive, and names a missing node", "[onednn]") {
  latency_models::LayerKey k;
  k.op = "conv2d";
  k.in_channels = 16;
  k.out_channels = 32;
  k.in_h = k.in_w = 14;
  k.kernel_h = k.kernel_w = 3;
  k.pad_h = k.pad_w = 1;
  k.batch_norm = true;
  k.activation = "relu";
  for (const std::string precision : {"fp32", "int8"}) {
    const auto net = latency_models::layer_network(k, precision);
    targets::OneDnnEngine engine(net, 1, precision);
    INFO(precision << ": " << engine.precision());
    CHECK(engine.precision() == (precision == "int8" ? "int8" : "fp32"));
    const auto x = torch::rand({1, 16, 14, 14}).contiguous();
    engine.run(x.data_ptr<float>());
    CHECK_NOTHROW(engine.run_node(latency_models::kLayerNode));
    CHECK_THROWS_WITH(engine.run_node("nope"), Catch::Contains("no step computes node 'nope'"));

    targets::OneDnnCpuTarget target;
    targets::MeasureOptions opts;
    opts.precision = precision;
    opts.warmup_runs = 2;
    opts.min_repeats = 5;
    opts.min_time_ms = 5;
    policies::CompressedNetwork c;
    c.net = net;
    const auto whole = target.measure(c, opts);
    opts.kernel = latency_models::kLayerNode;
    const auto kernel = target.measure(c, opts);
    REQUIRE(whole.ok());
    REQUIRE(kernel.ok());
    // The kernel alone leaves out the input copy and conversions: never slower than the whole.
    CHECK(kernel.median_ms <= whole.median_ms * 1.1);
    opts.kernel = "nope";
    CHECK_FALSE(target.measure(c, opts).ok());
  }
}

TEST_CASE("measurements pin their threads and say so; the previous CPU sets come back",
          "[onednn]") {
  cpu_set_t before;
  CPU_ZERO(&before);
  REQUIRE(sched_getaffinity(0, sizeof(before), &before) == 0);
  {
    targets::ThreadPinning pin(1);
    CHECK(pin.pinned());
    CHECK(pin.description().rfind("pinned: threads 0 on cpus ", 0) == 0);
    cpu_set_t now;
    CPU_ZERO(&now);
    REQUIRE(sched_getaffinity(0, sizeof(now), &now) == 0);
    CHECK(CPU_COUNT(&now) == 1);
  }
  cpu_set_t after;
  CPU_ZERO(&after);
  REQUIRE(sched_getaffinity(0, sizeof(after), &after) == 0);
  CHECK(CPU_EQUAL(&before, &after));

  targets::OneDnnCpuTarget target;
  targets::MeasureOptions opts;
  opts.warmup_runs = 1;
  opts.min_repeats = 3;
  opts.min_time_ms = 1;
  const auto m = target.measure(policies::apply(zoo("resnet8"), {}), opts);
  REQUIRE(m.ok());
  CHECK(m.affinity.rfind("pinned", 0) == 0);
  CHECK(m.to_json().at("affinity") == m.affinity);
}
