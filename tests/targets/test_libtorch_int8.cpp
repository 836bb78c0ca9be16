// cpu-libtorch int8: LibTorch's quantized ops (onednn engine) against LibTorch's own fake-quant
// simulation of the same compressed network. Without VNNI u8 x s8 products are exact only with
// weight codes within [-64, 63] (6-bit weights here, as in test_onednn.cpp) or activations on
// [0, 127] (reduce_range); full-range 8-bit layers fall back to fp32.

#include <ATen/Parallel.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>

#include "core/errors.h"
#include "graph/builder.h"
#include "models/train.h"
#include "models/zoo.h"
#include "policies/compress.h"
#include "targets/libtorch_cpu.h"
#include "targets/libtorch_int8.h"
#include "targets/onednn_engine.h"
#include "tests/targets/int8_fixtures.h"

using namespace tightfit;

namespace {

/// Test images compared per model (the first ones of the test split).
constexpr int64_t kCompareImages = 1000;
/// Weight bits that run in int8 exactly on every CPU (codes within [-64, 63]).
constexpr int kExactWeightBits = 6;

graph::Network zoo(const std::string& name) {
  return models::make_model(name, models::default_options(name));
}

/// vgg_small trained for 200 small steps (about 84% test accuracy, ~10 s on one thread): real
/// logits without depending on files outside the repository.
const graph::Network& trained_vgg_small() {
  static const graph::Network net = [] {
    graph::Network n = zoo("vgg_small");
    models::TrainOptions opts;
    opts.epochs = 1;
    opts.max_steps = 200;
    opts.batch_size = 32;
    opts.lr = 3e-3;
    opts.threads = 1;  // two OpenMP threads stall badly when other work shares the 2 cores
    opts.progress = false;
    // train_model ends by scoring the validation and test sets: 500 images of each suffice here.
    const auto& data = test_support::fashion();
    std::vector<int64_t> first(500);
    std::iota(first.begin(), first.end(), 0);
    datasets::Split split;
    split.train = data.train;
    split.validation = data.validation.subset(first);
    split.test = data.test.subset(first);
    split.mean = data.mean;
    split.std = data.std;
    models::train_model(n, split, opts);
    return n;
  }();
  return net;
}

struct Int8Check {
  test_support::Agreement agreement;
  std::string precision;
  int64_t int8_layers = 0, fp32_layers = 0;
};

Int8Check run_int8(const policies::CompressedNetwork& c) {
  // Output grids of layers that reach no fake_quant come from training images, as a deployment
  // would calibrate them.
  const auto& data = test_support::fashion();
  const auto calibration =
      datasets::sample_batches(data.train, 1, 256, data.mean, data.std, 2).at(0).images;
  targets::LibTorchInt8Model model(c.net, calibration);
  Int8Check r;
  r.precision = model.precision();
  r.int8_layers = model.int8_layers();
  r.fp32_layers = model.fp32_layers();
  r.agreement = test_support::agreement_on_fashion(
      c.net, [&](const at::Tensor& x) { return model.forward(x); }, kCompareImages, 100);
  return r;
}

/// A network every conv of which can run in int8 once quantized: its input passes a ReLU, so
/// every fake_quant is unsigned, and no conv computes the output itself (average pooling does).
graph::Network all_int8_candidate() {
  graph::Builder b({1, 12, 12}, 3);
  int x = b.relu("in_relu", b.input());
  x = b.conv_bn_act("c1", x, 8, 3, 1, graph::Builder::Act::kReLU);
  x = b.max_pool("pool", x, 2, 2);
  x = b.conv_bn_act("c2", x, 5, 3, 1, graph::Builder::Act::kReLU);
  x = b.adaptive_avg_pool("gap", x);
  return b.finish(b.flatten("flat", x));
}

/// `net` with 6-bit weights and 8-bit activations on the layers in `layers` (all when empty),
/// calibrated on random non-negative-after-ReLU inputs.
policies::CompressedNetwork quantize(const graph::Network& net,
                                     const std::vector<std::string>& layers = {}) {
  policies::Policy p;
  for (const auto& l : policies::decision_points(net).layers) {
    if (!layers.empty() && std::find(layers.begin(), layers.end(), l.name) == layers.end())
      continue;
    p.weight_bits[l.name] = kExactWeightBits;
    p.act_bits[l.name] = 8;
  }
  policies::Calibration calib;
  auto gen = at::detail::createCPUGenerator(5);
  std::vector<int64_t> shape{16};
  for (int64_t d : net.input_shape()) shape.push_back(d);
  calib.images.push_back(torch::randn(shape, gen));
  calib.labels.push_back(torch::zeros({16}, torch::kLong));
  policies::ApplyOptions opts;
  opts.calibration = &calib;
  return policies::apply(net, p, opts);
}

targets::MeasureOptions quick(const std::string& precision) {
  targets::MeasureOptions opts;
  opts.precision = precision;
  opts.threads = 1;
  opts.warmup_runs = 1;
  opts.min_repeats = 3;
  opts.min_time_ms = 1;
  return opts;
}

}  // namespace

TEST_CASE("LibTorch int8 agrees with the fake-quant simulation on a trained vgg_small",
          "[targets][libtorch_int8]") {
  REQUIRE(targets::LibTorchInt8Model::supported());
  const auto& net = trained_vgg_small();
  const auto r = run_int8(test_support::quantized_8bit(net, kExactWeightBits));
  const auto& a = r.agreement;
  INFO("agreement " << a.agree << ", accuracy " << a.backend_acc << " vs " << a.reference_acc
                    << ", rel error " << a.rel_error << ", " << r.int8_layers << " int8 / "
                    << r.fp32_layers << " fp32 layers, " << r.precision);
  CHECK(a.reference_acc > 0.75);  // trained (random: 0.1): the comparison means something
  // The first conv reads signed (normalized) pixels and the classifier computes the logits: both
  // stay fp32; the two other convs and the hidden linear run in int8.
  CHECK(r.precision == "int8+fp32");
  CHECK(r.fp32_layers == 2);
  CHECK(r.int8_layers == 3);
  CHECK(a.agree >= 0.99);
  CHECK(std::abs(a.backend_acc - a.reference_acc) <= 0.005);
}

TEST_CASE("LibTorch int8 with 8-bit weights: full-range activations need VNNI, 7-bit ones not",
          "[targets][libtorch_int8]") {
  const auto full = run_int8(test_support::quantized_8bit(trained_vgg_small(), 8));
  INFO("full range: agreement " << full.agreement.agree << ", " << full.precision);
  if (targets::OneDnnEngine::exact_full_range_int8()) {
    CHECK(full.precision == "int8+fp32");
  } else {
    // Activation codes reach 255 and weight codes 127: u8 x s8 pairs would saturate in int16.
    CHECK(full.precision == "fp32");
    CHECK(full.int8_layers == 0);
  }
  CHECK(full.agreement.agree >= 0.99);

  // Activations on [0, 127] (reduce_range): exact everywhere, so 8-bit weights run in int8.
  const auto reduced =
      run_int8(test_support::quantized_8bit(trained_vgg_small(), 8, /*reduce_range=*/true));
  const auto& a = reduced.agreement;
  INFO("reduced range: agreement " << a.agree << ", accuracy " << a.backend_acc << " vs "
                                   << a.reference_acc << ", " << reduced.precision);
  CHECK(reduced.precision == "int8+fp32");
  CHECK(reduced.int8_layers == 3);
  CHECK(a.agree >= 0.99);
  CHECK(std::abs(a.backend_acc - a.reference_acc) <= 0.005);
}

TEST_CASE("LibTorch int8 runs a ResNet (residual adds in float)", "[targets][libtorch_int8]") {
  const auto net = zoo("resnet8");
  const auto r = run_int8(test_support::quantized_8bit(net, kExactWeightBits));
  const auto& a = r.agreement;
  INFO("agreement " << a.agree << ", accuracy " << a.backend_acc << " vs " << a.reference_acc
                    << ", rel error " << a.rel_error << ", " << r.int8_layers << " int8 / "
                    << r.fp32_layers << " fp32 layers, " << r.precision);
  int64_t weighted = 0;
  for (const auto& n : net.nodes()) weighted += graph::has_weights(n.op);
  CHECK(r.precision == "int8+fp32");
  CHECK(r.fp32_layers == 2);  // the stem conv (signed pixels) and the classifier
  CHECK(r.int8_layers == weighted - 2);
  // Convs before a residual add land on calibrated grids the simulation does not round to:
  // close, not identical.
  CHECK(a.agree >= 0.98);
  CHECK(a.rel_error < 0.05);
}

TEST_CASE("LibTorch int8 says which precision ran", "[targets][libtorch_int8]") {
  const auto net = all_int8_candidate();
  const auto all = quantize(net);
  targets::LibTorchInt8Model model(all.net);
  CHECK(model.precision() == "int8");
  CHECK(model.int8_layers() == 2);
  CHECK(model.fp32_layers() == 0);
  // Same network, c2 without fake-quantized input: it cannot run in int8.
  const auto mixed = quantize(net, {"c1.conv"});
  targets::LibTorchInt8Model mixed_model(mixed.net);
  CHECK(mixed_model.precision() == "int8+fp32");
  CHECK(mixed_model.int8_layers() == 1);
  CHECK(mixed_model.fp32_layers() == 1);
  // Nothing fake-quantized: fp32.
  targets::LibTorchInt8Model float_model(net);
  CHECK(float_model.precision() == "fp32");

  // Outputs close to the simulation's on random inputs as well.
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({8, 1, 12, 12}, at::detail::createCPUGenerator(9));
  graph::Executor ex(all.net);
  ex.train(false);
  const auto ref = ex.forward(x);
  const auto got = model.forward(x);
  REQUIRE(got.sizes() == ref.sizes());
  CHECK((got - ref).abs().max().item<double>() <= 0.05 * ref.abs().max().item<double>());
  CHECK_THROWS_AS(model.forward(torch::randn({2, 3, 12, 12})), InputError);

  // The target reports what ran.
  targets::LibTorchCpuTarget target;
  const auto caps = target.capabilities().precisions;
  CHECK(std::find(caps.begin(), caps.end(), "int8") != caps.end());
  const auto m = target.measure(all, quick("int8"));
  REQUIRE(m.ok());
  CHECK(m.precision == "int8");
  CHECK(m.samples >= 3);
  const auto m_mixed = target.measure(mixed, quick("int8"));
  REQUIRE(m_mixed.ok());
  CHECK(m_mixed.precision == "int8+fp32");
  const auto m_fp32 = target.measure(all, quick("fp32"));
  REQUIRE(m_fp32.ok());
  CHECK(m_fp32.precision == "fp32");
}

TEST_CASE("cpu-libtorch reports unsupported precisions as failed measurements",
          "[targets][libtorch_int8]") {
  targets::LibTorchCpuTarget target;
  const auto c = quantize(all_int8_candidate());
  const int threads_before = at::get_num_threads();
  targets::Measurement m;
  REQUIRE_NOTHROW(m = target.measure(c, quick("bf16")));
  CHECK_FALSE(m.ok());
  CHECK_THAT(m.error, Catch::Contains("bf16"));
  CHECK_THAT(m.error, Catch::Contains("int8"));
  // A network the int8 compiler cannot take is a failed measurement too, and the thread count
  // is restored either way.
  policies::CompressedNetwork bad = c;
  bad.net.node(bad.net.find("c2.conv")).params.erase("weight");
  auto opts = quick("int8");
  opts.threads = 2;
  REQUIRE_NOTHROW(m = target.measure(bad, opts));
  CHECK_FALSE(m.ok());
  CHECK_THAT(m.error, Catch::Contains("c2.conv"));
  CHECK(at::get_num_threads() == threads_before);
}

TEST_CASE("an int8 export runs LibTorch's quantized ops as cpu-libtorch does, in C++ and Python",
          "[targets][libtorch_int8][export]") {
  // ResNet-8 with 8-bit activations: int8 layers landing on their fake_quant's grid and, before
  // each residual add, on calibrated ones.
  const auto c = test_support::quantized_8bit(zoo("resnet8"), kExactWeightBits);
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({4, 1, 28, 28}, at::detail::createCPUGenerator(3));
  targets::LibTorchInt8Model model(c.net, x);
  REQUIRE(model.int8_layers() > 0);
  const auto want = model.forward(x);
  const double scale = want.abs().max().item<double>();
  const auto dir = std::filesystem::temp_directory_path() / "tightfit_int8_export";
  std::filesystem::create_directories(dir);
  const auto file = (dir / "resnet8_int8.pt").string();
  model.export_torchscript(c.net, file);

  // C++: the onednn quantized engine re-packs the weights as the model did.
  const at::QEngine previous = at::globalContext().qEngine();
  at::globalContext().setQEngine(at::QEngine::ONEDNN);
  auto module = torch::jit::load(file);
  module.eval();
  const auto got = module.forward({x}).toTensor();
  at::globalContext().setQEngine(previous);
  REQUIRE(got.sizes() == want.sizes());
  CHECK((got - want).abs().max().item<double>() / scale < 1e-5);
  // The int8 layers are quantized ops in the module's code, each with its packed weights.
  const std::string code = module.get_method("forward").graph()->toString();
  int64_t qconvs = 0;
  for (size_t at = code.find("quantized::conv2d"); at != std::string::npos;
       at = code.find("quantized::conv2d", at + 1))
    ++qconvs;
  CHECK(qconvs == model.int8_layers());

  // Python, with the same engine.
  const auto input = (dir / "input.bin").string(), output = (dir / "python_out.bin").string();
  {
    const auto xc = x.contiguous();
    std::ofstream(input, std::ios::binary)
        .write(reinterpret_cast<const char*>(xc.data_ptr<float>()),
               static_cast<std::streamsize>(xc.numel() * sizeof(float)));
  }
  const std::string cmd =
      "/usr/bin/python3 -c \"import torch, numpy; torch.backends.quantized.engine = 'onednn'; "
      "m = torch.jit.load('" +
      file + "').eval(); x = torch.from_numpy(numpy.fromfile('" + input +
      "', dtype=numpy.float32).reshape(4, 1, 28, 28)); m(x).detach().numpy().tofile('" + output +
      "')\"";
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::ifstream in(output, std::ios::binary);
  auto from_python = torch::empty(want.sizes(), torch::kFloat32);
  in.read(reinterpret_cast<char*>(from_python.data_ptr<float>()),
          static_cast<std::streamsize>(from_python.numel() * sizeof(float)));
  REQUIRE(in.gcount() == static_cast<std::streamsize>(from_python.numel() * sizeof(float)));
  CHECK((from_python - want).abs().max().item<double>() / scale < 1e-5);
}
