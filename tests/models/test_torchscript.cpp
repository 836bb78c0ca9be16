// TorchScript import against PyTorch itself: torchvision models saved by Debian's python3-torch
// (traced and scripted, made at test time by make_torchscript_fixtures.py into the build tree)
// import with their weights and give PyTorch's output on PyTorch's input.

#include <torch/script.h>
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "../python_fixtures.h"
#include "core/errors.h"
#include "graph/channels.h"
#include "graph/executor.h"
#include "graph/network.h"
#include "models/loader.h"
#include "models/torchscript.h"
#include "policies/compress.h"
#include "targets/onednn_engine.h"

namespace fs = std::filesystem;
using namespace tightfit;

namespace {

/// The fixtures folder, made once per build tree (a few seconds).
fs::path fixtures() {
  const fs::path dir = TIGHTFIT_TS_FIXTURES;
  return test::python_fixture(dir, "fixtures.json",
                              "models/make_torchscript_fixtures.py " + dir.string());
}

torch::Tensor read_floats(const fs::path& p, std::vector<int64_t> shape) {
  std::ifstream in(p, std::ios::binary);
  auto t = torch::empty(shape, torch::kFloat32);
  in.read(reinterpret_cast<char*>(t.data_ptr<float>()),
          static_cast<std::streamsize>(t.numel() * sizeof(float)));
  REQUIRE(in.gcount() == static_cast<std::streamsize>(t.numel() * sizeof(float)));
  return t;
}

int count_ops(const graph::Network& net, graph::OpKind op) {
  int n = 0;
  for (const auto& node : net.nodes()) n += node.op == op;
  return n;
}

}  // namespace

TEST_CASE("torchvision models import from traced and scripted files with PyTorch's outputs",
          "[models][torchscript]") {
  const fs::path dir = fixtures();
  nlohmann::json index;
  std::ifstream(dir / "fixtures.json") >> index;
  REQUIRE(index["models"].size() >= 7);
  torch::NoGradGuard no_grad;
  for (const auto& m : index["models"]) {
    const std::string name = m["name"];
    const graph::Shape shape = m["input_shape"].get<graph::Shape>();
    std::vector<int64_t> batch_shape = {m["batch"].get<int64_t>()};
    batch_shape.insert(batch_shape.end(), shape.begin(), shape.end());
    const auto x = read_floats(dir / (name + "_input.bin"), batch_shape);
    const auto y = read_floats(dir / (name + "_output.bin"), {batch_shape[0], m["classes"]});
    for (const std::string how : {"traced", "scripted"}) {
      INFO(name << " " << how);
      const auto net =
          models::import_torchscript((dir / (name + "_" + how + ".pt")).string(), shape);
      // BatchNorm stays its own node (not folded), and layers keep their module paths.
      CHECK(count_ops(net, graph::OpKind::kBatchNorm) > 0);
      CHECK(count_ops(net, graph::OpKind::kConv2d) > 5);
      graph::Executor ex(net);
      ex.train(false);
      const auto out = ex.forward(x);
      REQUIRE(out.sizes() == y.sizes());
      const double rel = (out - y).abs().max().item<double>() / y.abs().max().item<double>();
      CHECK(rel < 1e-4);
      // The channel analysis finds decision points on an imported network as on the zoo's.
      const auto points = policies::decision_points(net);
      CHECK(points.channels.size() > 2);
      CHECK(points.layers.size() == static_cast<size_t>(count_ops(net, graph::OpKind::kConv2d) +
                                                        count_ops(net, graph::OpKind::kLinear)));
    }
  }
}

TEST_CASE("squeeze-and-excitation, chunk, concatenation and channel shuffle couple channels right",
          "[models][torchscript]") {
  const fs::path dir = fixtures();
  auto group_of = [](const graph::Network& net, const graph::ChannelAnalysis& ca,
                     const std::string& layer) -> const graph::ChannelGroup& {
    const int id = net.find(layer);
    REQUIRE(id >= 0);
    REQUIRE(ca.layouts[id].segments.size() == 1);
    return ca.groups[ca.layouts[id].segments[0].group];
  };
  {
    // MobileNetV3-small block 4: expand (block.0) -> depthwise (block.1) -> SE (avgpool, fc1,
    // relu, fc2, hardsigmoid, mul) -> project (block.3). The gate's channels are the expanded
    // channels: one prunable group holding the expansion conv and the SE's fc2, read by fc1.
    const auto net =
        models::import_torchscript((dir / "mobilenet_v3_small_traced.pt").string(), {3, 64, 64});
    const auto ca = graph::analyze_channels(net);
    const auto& expand = group_of(net, ca, "features.4.block.0.0");
    const auto& gate = group_of(net, ca, "features.4.block.2.fc2");
    CHECK(&expand == &gate);
    CHECK(expand.prunable);
    CHECK(expand.producers.size() == 2);
    const auto& squeeze = group_of(net, ca, "features.4.block.2.fc1");
    CHECK(squeeze.prunable);
    CHECK(&squeeze != &expand);
    CHECK(std::find(expand.consumers.begin(), expand.consumers.end(),
                    net.find("features.4.block.2.fc1")) != expand.consumers.end());
  }
  {
    // ShuffleNetV2: a unit's output (concatenation, then channel shuffle) and the halves chunk
    // takes from it keep every channel; the branch's inner 1x1 -> depthwise group is prunable.
    const auto net =
        models::import_torchscript((dir / "shufflenet_v2_x0_5_traced.pt").string(), {3, 64, 64});
    CHECK(count_ops(net, graph::OpKind::kChannelShuffle) == 16);
    CHECK(count_ops(net, graph::OpKind::kSlice) == 2 * 13);
    CHECK(count_ops(net, graph::OpKind::kConcat) == 16);
    const auto ca = graph::analyze_channels(net);
    const auto& inner = group_of(net, ca, "stage2.1.branch2.0");
    CHECK(inner.prunable);
    const auto& out = group_of(net, ca, "stage2.1.branch2.5");
    CHECK_FALSE(out.prunable);
    CHECK_THAT(out.reason, Catch::Contains("channel_shuffle") || Catch::Contains("slice"));
    for (const auto& node : net.nodes())
      if (node.op == graph::OpKind::kChannelShuffle) CHECK(node.attrs.groups == 2);
  }
}

TEST_CASE("cpu-onednn runs imported networks with PyTorch's outputs", "[models][torchscript]") {
  const fs::path dir = fixtures();
  torch::NoGradGuard no_grad;
  // VGG-11-BN at 64x64 pools 2x2 up to 7x7 (an enlarging adaptive pooling).
  for (const std::string name :
       {"mobilenet_v3_small", "shufflenet_v2_x0_5", "efficientnet_b0", "vgg11_bn"}) {
    INFO(name);
    const auto net =
        models::import_torchscript((dir / (name + "_traced.pt")).string(), {3, 64, 64});
    const auto x = read_floats(dir / (name + "_input.bin"), {2, 3, 64, 64});
    const auto y = read_floats(dir / (name + "_output.bin"), {2, 10});
    targets::OneDnnEngine engine(net, 2, "fp32");
    const auto out = engine.run(x.data_ptr<float>());
    REQUIRE(out.size() == 20);
    const auto got = torch::from_blob(const_cast<float*>(out.data()), {2, 10}).clone();
    CHECK((got - y).abs().max().item<double>() / y.abs().max().item<double>() < 1e-4);
  }
}

TEST_CASE("an imported network keeps the module paths as layer names", "[models][torchscript]") {
  const fs::path dir = fixtures();
  const auto net = models::import_torchscript((dir / "resnet18_traced.pt").string(), {3, 64, 64});
  for (const char* layer : {"conv1", "bn1", "layer1.0.conv1", "layer2.0.downsample.0", "fc"})
    CHECK(net.find(layer) >= 0);
  // Through the model loader, as every --model argument goes: the input shape defaults to the
  // first convolution's channels at 224 x 224.
  const auto loaded = models::load_model((dir / "resnet18_scripted.pt").string());
  CHECK(loaded.input_shape() == graph::Shape{3, 224, 224});
  CHECK(loaded.num_params() == net.num_params());
}

TEST_CASE("files that are not importable TorchScript are refused in one line",
          "[models][torchscript]") {
  const fs::path dir = fixtures();
  // Ops the IR does not have: every kind with its count.
  REQUIRE_THROWS_AS(models::import_torchscript((dir / "unsupported.pt").string(), {3, 64, 64}),
                    InputError);
  REQUIRE_THROWS_WITH(models::import_torchscript((dir / "unsupported.pt").string(), {3, 64, 64}),
                      Catch::Contains("uses ops tightfit cannot import") &&
                          Catch::Contains("aten::elu x2") &&
                          Catch::Contains("aten::leaky_relu x1"));
  // A state_dict saved with torch.save: the line says how to save TorchScript.
  REQUIRE_THROWS_WITH(models::load_model((dir / "state_dict.pt").string()),
                      Catch::Contains("saved with torch.save") &&
                          Catch::Contains("torch.jit.trace(model.eval(), example_input)"));
  // A zip that is no PyTorch archive at all.
  const fs::path bad = dir.parent_path() / "not_a_module.pt";
  std::ofstream(bad, std::ios::binary) << "PK\x03\x04 and then nothing a zip reader accepts";
  REQUIRE_THROWS_WITH(models::load_model(bad.string()),
                      Catch::Contains("cannot load TorchScript file"));
  // A wrong input shape for the network.
  REQUIRE_THROWS_WITH(
      models::import_torchscript((dir / "resnet18_traced.pt").string(), {1, 64, 64}),
      Catch::Contains("give the input shape the model expects"));
}

namespace {

/// `count` random joint policies (keep, 8-bit weights, rank) on imported model `name`, each
/// applied and run.
void run_random_policies(const std::string& name, int count, uint64_t seed) {
  torch::NoGradGuard no_grad;
  std::mt19937_64 rng(seed);
  const std::vector<double> keeps = {0.25, 0.5, 0.75, 1.0};
  const std::vector<double> ranks = {0.25, 0.5, 1.0};
  const auto net =
      models::import_torchscript((fixtures() / (name + "_traced.pt")).string(), {3, 64, 64});
  const auto points = policies::decision_points(net);
  for (int k = 0; k < count; ++k) {
    policies::Policy p;
    for (const auto& c : points.channels)
      p.keep[c.id] = keeps[std::uniform_int_distribution<size_t>(0, keeps.size() - 1)(rng)];
    for (const auto& l : points.layers) {
      if (rng() % 2) p.weight_bits[l.name] = 8;
      // Layers of more than 2M weights (VGG's 25088-input classifier, ResNet-50's widest
      // convolutions) are not factorized here: a float64 decomposition of each takes seconds,
      // and the factorizations themselves are tested in test_lowrank.
      if (l.full_rank > 0 && l.weight_params <= (int64_t{1} << 21) && rng() % 4 == 0)
        p.rank[l.name] = ranks[std::uniform_int_distribution<size_t>(0, ranks.size() - 1)(rng)];
    }
    p.factorization.allow_larger = true;
    INFO(name << " policy " << k << ": " << p.to_json().dump());
    policies::ApplyOptions opts;
    opts.channel_multiple = 8;
    const auto c = policies::apply(net, p, opts);
    graph::Executor ex(c.net);
    ex.train(false);
    const auto out = ex.forward(torch::randn({2, 3, 64, 64}));
    CHECK(out.sizes() == std::vector<int64_t>{2, 10});
    CHECK(torch::isfinite(out).all().item<bool>());
  }
}

}  // namespace

TEST_CASE("random joint policies on imported networks give networks that run",
          "[models][torchscript]") {
  run_random_policies("resnet18", 6, 20);
  run_random_policies("mobilenet_v2", 6, 21);
  run_random_policies("mobilenet_v3_small", 6, 26);
  run_random_policies("shufflenet_v2_x0_5", 6, 27);
}

TEST_CASE("random joint policies on every imported torchvision model run",
          "[models][torchscript][slow]") {
  run_random_policies("resnet18", 30, 22);
  run_random_policies("mobilenet_v2", 30, 23);
  run_random_policies("vgg11_bn", 30, 24);
  run_random_policies("resnet50", 30, 25);
  run_random_policies("mobilenet_v3_small", 30, 28);
  run_random_policies("shufflenet_v2_x0_5", 30, 29);
  run_random_policies("efficientnet_b0", 30, 30);
}

namespace {

/// Exports `name` uncompressed and compressed (keep 0.5 everywhere, 8-bit weights, the layer
/// `factorized` at rank 0.5 and, when given, 8-bit activations after `quantized`), loads both
/// in LibTorch and in Python, and compares with tightfit's own outputs.
void check_export(const std::string& name, const std::string& factorized,
                  const std::string& quantized) {
  INFO(name);
  const fs::path dir = fixtures();
  const fs::path out = dir.parent_path() / "torchscript_export" / name;
  fs::create_directories(out);
  torch::NoGradGuard no_grad;
  const auto net = models::import_torchscript((dir / (name + "_traced.pt")).string(), {3, 64, 64});
  const auto points = policies::decision_points(net);
  policies::Policy p;
  for (const auto& c : points.channels) p.keep[c.id] = 0.5;
  for (const auto& l : points.layers) p.weight_bits[l.name] = 8;
  p.rank[factorized] = 0.5;
  if (!quantized.empty()) p.act_bits[quantized] = 8;
  policies::Calibration calibration;
  calibration.images.push_back(torch::randn({8, 3, 64, 64}));
  calibration.labels.push_back(torch::zeros({8}, torch::kLong));
  policies::ApplyOptions opts;
  opts.calibration = &calibration;
  const auto compressed = policies::apply(net, p, opts);
  REQUIRE(compressed.net.num_params() < net.num_params());

  const fs::path input = dir / (name + "_input.bin");
  const auto x = read_floats(input, {2, 3, 64, 64});
  for (const auto* which : {&net, &compressed.net}) {
    const bool small = which == &compressed.net;
    INFO((small ? "compressed" : "uncompressed"));
    const fs::path file = out / (small ? "compressed.pt" : "full.pt");
    models::export_torchscript(*which, file.string());
    graph::Executor ex(*which);
    ex.train(false);
    const auto want = ex.forward(x);
    const double scale = want.abs().max().item<double>();
    // C++: torch::jit::load.
    auto module = torch::jit::load(file.string());
    module.eval();
    const auto got = module.forward({x}).toTensor();
    REQUIRE(got.sizes() == want.sizes());
    CHECK((got - want).abs().max().item<double>() / scale < 1e-4);
    // Its parameters are the compressed network's: the pruned channels are gone.
    int64_t params = 0;
    for (const auto& t : module.parameters()) params += t.numel();
    CHECK(params == which->num_params());  // weights and biases, BatchNorm's included
    // Python: torch.jit.load on the same input.
    const std::string cmd = "/usr/bin/python3 -c \"import torch, numpy; m = torch.jit.load('" +
                            file.string() + "').eval(); x = torch.from_numpy(numpy.fromfile('" +
                            input.string() +
                            "', dtype=numpy.float32).reshape(2, 3, 64, 64)); "
                            "m(x).detach().numpy().tofile('" +
                            (out / "python_out.bin").string() + "')\"";
    REQUIRE(std::system(cmd.c_str()) == 0);
    const auto from_python = read_floats(out / "python_out.bin", {2, 10});
    CHECK((from_python - want).abs().max().item<double>() / scale < 1e-4);
  }
  // The original file's output, through import and export, is PyTorch's.
  const auto y = read_floats(dir / (name + "_output.bin"), {2, 10});
  auto full = torch::jit::load((out / "full.pt").string());
  CHECK((full.forward({x}).toTensor() - y).abs().max().item<double>() /
            y.abs().max().item<double>() <
        1e-4);
}

}  // namespace

TEST_CASE("exported networks load in LibTorch and in Python and compute what tightfit computes",
          "[models][torchscript][export]") {
  check_export("resnet18", "fc", "layer1.0.conv2");
  check_export("mobilenet_v2", "classifier.1", "features.2.conv.2");
  // Squeeze-and-excitation gates, hardsigmoid; chunk, concatenation and channel shuffle.
  check_export("mobilenet_v3_small", "classifier.3", "");
  check_export("shufflenet_v2_x0_5", "fc", "");
}

TEST_CASE("exports of the large imported networks load in Python with tightfit's outputs",
          "[models][torchscript][export][slow]") {
  check_export("resnet50", "fc", "layer1.0.conv2");
  check_export("vgg11_bn", "classifier.6", "features.4");
}
