// PruningNet (MetaPruning) and the `pruningnet` evaluator: generated networks have the shapes of
// any channel configuration and run; training lowers the loss on real Fashion-MNIST; files
// round-trip and refuse other networks; the evaluator reports candidates it cannot score as data
// and rejects bad configs.

#include <torch/torch.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/errors.h"
#include "datasets/batches.h"
#include "datasets/fashion_mnist.h"
#include "evaluators/bn_recal.h"
#include "evaluators/evaluator.h"
#include "evaluators/pruningnet.h"
#include "graph/executor.h"
#include "models/zoo.h"
#include "policies/compress.h"

using namespace tightfit;
using evaluators::PruningNet;
using evaluators::PruningNetConfig;
using evaluators::PruningNetTrainOptions;

namespace {

const datasets::Split& fashion() {
  static const auto d = datasets::load_fashion_mnist();
  return d;
}

/// Random 28x28 images and labels: enough to exercise training and scoring without the data set.
const datasets::Split& synthetic() {
  static const datasets::Split d = [] {
    std::mt19937_64 rng(5);
    std::uniform_int_distribution<int> pixel(0, 255), label(0, 9);
    auto make = [&](int64_t n) {
      datasets::ImageSet s;
      s.rows = s.cols = 28;
      for (int64_t i = 0; i < n * 28 * 28; ++i)
        s.pixels.push_back(static_cast<uint8_t>(pixel(rng)));
      for (int64_t i = 0; i < n; ++i) s.labels.push_back(static_cast<uint8_t>(label(rng)));
      return s;
    };
    datasets::Split split;
    split.train = make(256);
    split.validation = make(64);
    split.test = make(64);
    return split;
  }();
  return d;
}

graph::Network zoo(const std::string& name, uint64_t seed = 0) {
  auto opts = models::default_options(name);
  opts.seed = seed;
  return models::make_model(name, opts);
}

std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "tightfit_test_pruningnet";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

/// A keep policy with a random fraction in [0.1, 1] per decision point.
policies::Policy random_keep(const graph::Network& net, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> fraction(0.1, 1.0);
  policies::Policy p;
  for (const auto& d : policies::decision_points(net).channels) p.keep[d.id] = fraction(rng);
  return p;
}

PruningNetTrainOptions quick(int64_t steps, int64_t batch_size = 32) {
  PruningNetTrainOptions o;
  o.steps = steps;
  o.batch_size = batch_size;
  o.threads = 1;  // on a shared 2-core machine, 2 threads can run several times slower
  o.progress = false;
  return o;
}

at::Tensor run(const graph::Network& net, const at::Tensor& x) {
  torch::NoGradGuard no_grad;
  graph::Executor ex(net);
  return ex.forward(x);
}

void require_same_params(const graph::Network& a, const graph::Network& b) {
  REQUIRE(a.size() == b.size());
  for (int i = 0; i < a.size(); ++i)
    for (const auto& [key, t] : a.node(i).params) {
      INFO(a.node(i).name << "." << key);
      REQUIRE(b.node(i).params.count(key));
      CHECK(b.node(i).params.at(key).shape == t.shape);
      CHECK(b.node(i).params.at(key).data == t.data);
    }
}

}  // namespace

TEST_CASE("generated networks have the shapes of random channel configurations and run",
          "[pruningnet]") {
  std::mt19937_64 rng(11);
  for (const std::string name : {"resnet8", "vgg_small", "mobilenetv2_small"}) {
    INFO(name);
    const graph::Network net = zoo(name);
    PruningNetConfig config;
    config.hidden = 8;
    const PruningNet pn(net, config, 3);
    CHECK(pn.decision_points().size() == policies::decision_points(net).channels.size());
    const at::Tensor x = torch::randn({2, 1, 28, 28});
    for (int trial = 0; trial < 4; ++trial) {
      const policies::Policy policy = random_keep(net, rng);
      // policies::apply chooses which channels; the generated network must have its shapes.
      const auto reference = policies::apply(net, policy);
      const graph::Network generated = pn.generate(policy);
      CHECK(graph::infer_shapes(generated) == graph::infer_shapes(reference.net));
      for (int i = 0; i < net.size(); ++i)
        for (const auto& [key, t] : reference.net.node(i).params) {
          INFO(net.node(i).name << "." << key);
          CHECK(generated.node(i).params.at(key).shape == t.shape);
        }
      CHECK(pn.kept_channels(policy) == reference.kept_channels);
      const at::Tensor y = run(generated, x);
      CHECK(y.sizes() == at::IntArrayRef({2, 10}));
      CHECK(torch::isfinite(y).all().item<bool>());
    }
  }
}

TEST_CASE("a fresh PruningNet generates the original network at full width", "[pruningnet]") {
  const graph::Network net = zoo("resnet8");
  const PruningNet pn(net);
  const graph::Network same = pn.generate(std::map<std::string, int64_t>{});
  require_same_params(net, same);
  // Pruned configurations start from the original weights, cropped by position.
  const auto id = pn.decision_points().front().id;
  const graph::Network pruned = pn.generate({{id, 4}});
  const auto& w = net.node(net.find(id)).params.at("weight");
  const auto& g = pruned.node(pruned.find(id)).params.at("weight");
  REQUIRE(g.shape.at(0) == 4);
  const int64_t per_channel = w.numel() / w.shape[0];
  CHECK(std::vector<float>(g.data.begin(), g.data.end()) ==
        std::vector<float>(w.data.begin(), w.data.begin() + 4 * per_channel));
}

TEST_CASE("PruningNet rejects configurations of other networks and bad configs", "[pruningnet]") {
  const graph::Network net = zoo("resnet8");
  const PruningNet pn(net);
  const auto& first = pn.decision_points().front();
  REQUIRE_THROWS_WITH(
      pn.generate({{"features.0", 3}}),
      Catch::Contains("'features.0' is not a channel decision point") && Catch::Contains(first.id));
  REQUIRE_THROWS_AS(pn.generate({{first.id, 0}}), InputError);
  REQUIRE_THROWS_WITH(pn.generate({{first.id, first.channels + 1}}),
                      Catch::Contains("keep 1 to " + std::to_string(first.channels)));
  policies::Policy bits;
  bits.weight_bits[first.id] = 8;
  REQUIRE_THROWS_WITH(pn.generate(bits), Catch::Contains("keep-only policy"));

  PruningNetConfig bad;
  bad.keep = {0.5, 1.5};
  REQUIRE_THROWS_AS(PruningNet(net, bad), ConfigError);
  REQUIRE_THROWS_WITH(PruningNetConfig::from_json({{"hiden", 3}}, "cfg"),
                      Catch::Contains("unknown key 'hiden'") && Catch::Contains("hidden"));
  PruningNet trainable(net);
  REQUIRE_THROWS_WITH(trainable.train(synthetic(), quick(0)), Catch::Contains("steps >= 1"));
}

TEST_CASE("PruningNet sampling: banded draws stay within the band and reach every width",
          "[pruningnet]") {
  PruningNetConfig config;
  config.keep = {0.25,   0.3125, 0.375,  0.4375, 0.5,    0.5625, 0.625,
                 0.6875, 0.75,   0.8125, 0.875,  0.9375, 1.0};
  const size_t n = config.keep.size(), points = 11;
  const int draws = 4000;
  // Share of draws whose mean position lies in the top two of the list (overall width >= 94%).
  auto widest_share = [&](const PruningNetConfig& c) {
    std::mt19937_64 rng(3);
    int widest = 0;
    for (int d = 0; d < draws; ++d) {
      const auto pos = evaluators::sample_keep_positions(c, points, rng);
      REQUIRE(pos.size() == points);
      const auto [lo, hi] = std::minmax_element(pos.begin(), pos.end());
      REQUIRE(*hi < n);
      if (c.sampling == "banded") REQUIRE(*hi - *lo <= static_cast<size_t>(2 * c.band));
      double mean = 0;
      for (size_t p : pos) mean += static_cast<double>(p) / points;
      widest += mean >= static_cast<double>(n) - 2.5;
    }
    return static_cast<double>(widest) / draws;
  };
  config.sampling = "banded";
  config.band = 2;
  // A centre in the top two positions (2/13 of draws) mostly gives such a network.
  CHECK(widest_share(config) > 0.08);
  config.sampling = "layerwise";
  // Independent layers: a mean over 11 of them this far up is vanishingly rare.
  CHECK(widest_share(config) < 0.001);
  // band 0: every layer at the centre, i.e. uniform width.
  config.sampling = "banded";
  config.band = 0;
  std::mt19937_64 rng(4);
  for (int d = 0; d < 50; ++d) {
    const auto pos = evaluators::sample_keep_positions(config, points, rng);
    CHECK(std::count(pos.begin(), pos.end(), pos.front()) == static_cast<long>(points));
  }

  // Files written before the key existed were trained layerwise; bad values are ConfigErrors.
  CHECK(PruningNetConfig::from_json({{"hidden", 8}}, "cfg").sampling == "layerwise");
  CHECK(PruningNetConfig::from_json(nullptr, "cfg").sampling == "layerwise");  // as no keys
  CHECK(PruningNetConfig::from_json(PruningNetConfig{}.to_json(), "cfg").sampling == "banded");
  REQUIRE_THROWS_WITH(PruningNetConfig::from_json({{"sampling", "random"}}, "cfg"),
                      Catch::Contains("cfg.sampling is 'random'") && Catch::Contains("banded"));
  REQUIRE_THROWS_WITH(PruningNetConfig::from_json({{"band", -1}}, "cfg"),
                      Catch::Contains("cfg.band must be >= 0"));
}

TEST_CASE("PruningNet sandwich training also trains the full-width network", "[pruningnet]") {
  const graph::Network net = zoo("resnet8");
  PruningNetConfig config;
  config.hidden = 8;
  CHECK_FALSE(PruningNetConfig::from_json({{"hidden", 8}}, "cfg").sandwich);
  PruningNet plain(net, config, 2);
  config.sandwich = true;
  CHECK(PruningNetConfig::from_json(config.to_json(), "cfg").sandwich);
  PruningNet a(net, config, 2), b(net, config, 2);
  const auto rp = plain.train(synthetic(), quick(3));
  const auto ra = a.train(synthetic(), quick(3));
  const auto rb = b.train(synthetic(), quick(3));
  CHECK(ra.step_loss == rb.step_loss);
  // The recorded loss is the sampled configuration's: the same configuration and batch as without
  // the sandwich at the first step, before any update differs.
  CHECK(ra.step_loss.front() == rp.step_loss.front());
  // The full-width network's gradient changed the update.
  const std::map<std::string, int64_t> full;
  const auto id = a.decision_points().front().id;
  const auto w = [&](const PruningNet& p) {
    const auto g = p.generate(full);
    return g.node(g.find(id)).params.at("weight").data;
  };
  CHECK(w(a) == w(b));
  CHECK(w(a) != w(plain));
}

TEST_CASE("PruningNet training is deterministic given the seed and changes generated weights",
          "[pruningnet]") {
  const graph::Network net = zoo("resnet8");
  PruningNetConfig config;
  config.hidden = 16;
  PruningNet a(net, config, 9), b(net, config, 9);
  const auto ra = a.train(synthetic(), quick(4));
  const auto rb = b.train(synthetic(), quick(4));
  REQUIRE(ra.step_loss.size() == 4);
  CHECK(ra.step_loss == rb.step_loss);
  const auto id = a.decision_points().front().id;
  const std::map<std::string, int64_t> half = {{id, a.decision_points().front().channels / 2}};
  require_same_params(a.generate(half), b.generate(half));
  // The generators now depend on the encoding: different widths of one group give weights that
  // are not crops of each other.
  const auto id_w = [&](const graph::Network& n) { return n.node(n.find(id)).params.at("weight"); };
  const auto narrow = id_w(a.generate(half));
  const auto wide = id_w(a.generate(std::map<std::string, int64_t>{}));
  const std::vector<float> crop(wide.data.begin(), wide.data.begin() + narrow.numel());
  CHECK(crop != narrow.data);
}

TEST_CASE("PruningNet files round-trip and refuse other networks", "[pruningnet]") {
  const graph::Network net = zoo("resnet8");
  PruningNetConfig config;
  config.hidden = 16;
  PruningNet pn(net, config, 4);
  pn.train(synthetic(), quick(3));
  pn.meta()["model"] = "resnet8";
  const std::string path = temp_path("resnet8.pnet");
  pn.save(path);

  const auto info = PruningNet::read_info(path);
  CHECK(info.network_hash == evaluators::network_hash(net));
  CHECK(info.config.hidden == 16);
  CHECK(info.meta.at("model") == "resnet8");

  const PruningNet loaded = PruningNet::load(path, net);
  CHECK(loaded.num_params() == pn.num_params());
  std::mt19937_64 rng(2);
  const at::Tensor x = torch::randn({3, 1, 28, 28});
  for (int trial = 0; trial < 3; ++trial) {
    const auto policy = random_keep(net, rng);
    const auto a = pn.generate(policy), b = loaded.generate(policy);
    require_same_params(a, b);
    CHECK((run(a, x) - run(b, x)).abs().max().item<double>() == 0.0);
  }

  // Another structure, and the same structure with other weights: both are other networks.
  REQUIRE_THROWS_WITH(PruningNet::load(path, zoo("vgg_small")),
                      Catch::Contains("was trained for network with hash " + info.network_hash) &&
                          Catch::Contains("(model resnet8)") &&
                          Catch::Contains("tightfit metaprune train --model"));
  REQUIRE_THROWS_AS(PruningNet::load(path, zoo("resnet8", 2)), InputError);

  // Damaged files.
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string truncated = temp_path("truncated.pnet"), corrupt = temp_path("corrupt.pnet"),
                    foreign = temp_path("foreign.pnet");
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  std::string flipped = bytes;
  flipped[flipped.size() - 100] ^= 0x5a;
  std::ofstream(corrupt, std::ios::binary) << flipped;
  std::ofstream(foreign, std::ios::binary) << "not a pruningnet";
  REQUIRE_THROWS_WITH(PruningNet::load(truncated, net), Catch::Contains("truncated"));
  REQUIRE_THROWS_WITH(PruningNet::load(corrupt, net), Catch::Contains("corrupted"));
  REQUIRE_THROWS_WITH(PruningNet::load(foreign, net), Catch::Contains("not a PruningNet file"));
  REQUIRE_THROWS_WITH(PruningNet::read_info(foreign), Catch::Contains("not a PruningNet file"));
  // The header alone is read by read_info: cut inside it, or from a newer tightfit.
  const std::string cut_header = temp_path("cut_header.pnet"), newer = temp_path("newer.pnet");
  std::ofstream(cut_header, std::ios::binary) << bytes.substr(0, 40);
  std::string newer_bytes = bytes;
  newer_bytes[8] = static_cast<char>(newer_bytes[8] + 1);  // format version, little-endian
  std::ofstream(newer, std::ios::binary) << newer_bytes;
  REQUIRE_THROWS_WITH(PruningNet::read_info(cut_header),
                      Catch::Contains("truncated") && Catch::Contains("metaprune train"));
  REQUIRE_THROWS_WITH(PruningNet::read_info(newer), Catch::Contains("upgrade tightfit"));
  REQUIRE_THROWS_WITH(PruningNet::load(newer, net), Catch::Contains("upgrade tightfit"));
  REQUIRE_THROWS_WITH(PruningNet::load(temp_path("none.pnet"), net),
                      Catch::Contains("cannot open"));
}

TEST_CASE("the pruningnet evaluator scores candidates, reports the ones it cannot score as data",
          "[pruningnet]") {
  const graph::Network net = zoo("resnet8");
  const std::string path = temp_path("evaluator.pnet");
  PruningNet(net).save(path);
  const auto& data = fashion();
  const nlohmann::json config = {
      {"path", path}, {"bn_batches", 2}, {"batch_size", 64}, {"validation_images", 200}};
  auto evaluator = evaluators::make_evaluator("pruningnet", config, data);
  CHECK(evaluator->name() == "pruningnet");
  CHECK(evaluator->settings().at("network_hash") == evaluators::network_hash(net));

  // Unpruned, a fresh PruningNet is the original network: the same score as bn-recal.
  const auto full = evaluator->evaluate(policies::apply(net, {}), net);
  REQUIRE(full.ok());
  CHECK(full.images == 200);
  auto bn_recal = evaluators::make_evaluator(
      "bn-recal", {{"bn_batches", 2}, {"batch_size", 64}, {"validation_images", 200}}, data);
  const auto reference = bn_recal->evaluate(policies::apply(net, {}), net);
  CHECK(full.accuracy == Approx(reference.accuracy));
  CHECK(full.loss == Approx(reference.loss).epsilon(1e-4));

  // Pruned, quantized and activation-quantized candidates are scored.
  std::mt19937_64 rng(8);
  policies::Policy policy = random_keep(net, rng);
  const auto layers = policies::decision_points(net).layers;
  policy.weight_bits[layers.at(1).name] = 4;
  policy.act_bits[layers.at(2).name] = 8;
  policies::Calibration calibration;
  for (auto& b : datasets::sample_batches(data.train, 2, 32, data.mean, data.std, 1)) {
    calibration.images.push_back(b.images);
    calibration.labels.push_back(b.labels);
  }
  policies::ApplyOptions opts;
  opts.calibration = &calibration;
  const auto scored = evaluator->evaluate(policies::apply(net, policy, opts), net);
  INFO(scored.error);
  REQUIRE(scored.ok());
  CHECK(scored.accuracy >= 0.0);
  CHECK(scored.accuracy <= 1.0);

  // A candidate of another network: its decision points are not the PruningNet's. Data, not a
  // throw.
  const graph::Network vgg = zoo("vgg_small");
  policies::Policy vgg_policy;
  vgg_policy.keep[policies::decision_points(vgg).channels.front().id] = 0.5;
  const auto failed = evaluator->evaluate(policies::apply(vgg, vgg_policy), net);
  CHECK_FALSE(failed.ok());
  CHECK_THAT(failed.error, Catch::Contains("not a channel decision point"));

  // A candidate whose other decisions cannot be applied (a rank out of range) is data too.
  policies::Policy keep_only;
  keep_only.keep[policies::decision_points(net).channels.front().id] = 0.25;
  auto bad = policies::apply(net, keep_only);
  bad.policy.rank[layers.at(1).name] = 1.5;
  const auto unscorable = evaluator->evaluate(bad, net);
  CHECK_FALSE(unscorable.ok());
  CHECK_THAT(unscorable.error, Catch::Contains("rank"));

  // The PruningNet of another network is the user's mistake: it throws, naming the fix.
  REQUIRE_THROWS_WITH(evaluator->evaluate(policies::apply(vgg, {}), vgg),
                      Catch::Contains("was trained for network with hash") &&
                          Catch::Contains("tightfit metaprune train"));
}

TEST_CASE("the pruningnet evaluator rejects bad configs", "[pruningnet]") {
  const std::string path = temp_path("config.pnet");
  PruningNet(zoo("resnet8")).save(path);
  const auto& data = synthetic();
  REQUIRE_THROWS_WITH(evaluators::make_evaluator("pruningnet", nlohmann::json::object(), data),
                      Catch::Contains("evaluator.pruningnet.path is missing") &&
                          Catch::Contains("tightfit metaprune train"));
  REQUIRE_THROWS_AS(evaluators::make_evaluator("pruningnet", nlohmann::json(), data), ConfigError);
  REQUIRE_THROWS_WITH(
      evaluators::make_evaluator("pruningnet", {{"path", temp_path("missing.pnet")}}, data),
      Catch::Contains("does not exist") && Catch::Contains("tightfit metaprune train"));
  REQUIRE_THROWS_WITH(
      evaluators::make_evaluator("pruningnet", {{"path", path}, {"bn_batch", 3}}, data),
      Catch::Contains("unknown key 'bn_batch'") && Catch::Contains("bn_batches"));
  REQUIRE_THROWS_AS(
      evaluators::make_evaluator("pruningnet", {{"path", path}, {"threads", 0}}, data),
      ConfigError);
  REQUIRE_THROWS_AS(evaluators::make_evaluator("pruningnet", {{"path", 3}}, data), ConfigError);
  const std::string foreign = temp_path("foreign_config.pnet");
  std::ofstream(foreign) << "{}";
  REQUIRE_THROWS_WITH(evaluators::make_evaluator("pruningnet", {{"path", foreign}}, data),
                      Catch::Contains("not a PruningNet file"));
  const auto names = evaluators::evaluator_names();
  CHECK(std::find(names.begin(), names.end(), "pruningnet") != names.end());
}

TEST_CASE("PruningNet training lowers the loss on Fashion-MNIST", "[pruningnet]") {
  const graph::Network net = zoo("resnet8");
  PruningNet pn(net, PruningNetConfig{}, 1);
  constexpr int64_t kSteps = 150, kWindow = 30;
  const auto r = pn.train(fashion(), quick(kSteps, 64));
  REQUIRE(r.step_loss.size() == kSteps);
  const double first = r.first_window(kWindow), last = r.last_window(kWindow);
  WARN("resnet8 PruningNet, " << kSteps << " steps of 64 images: mean loss " << first << " (first "
                              << kWindow << ") -> " << last << " (last " << kWindow << "), "
                              << kSteps / r.seconds << " steps/s");
  CHECK(std::isfinite(last));
  CHECK(last < 0.75 * first);
}

TEST_CASE("PruningNet for ResNet-20: training speed and loss", "[pruningnet][slow]") {
  const graph::Network net = zoo("resnet20");
  PruningNet pn(net, PruningNetConfig{}, 1);
  constexpr int64_t kSteps = 300, kWindow = 50;
  const auto r = pn.train(fashion(), quick(kSteps, 128));
  const double first = r.first_window(kWindow), last = r.last_window(kWindow);
  WARN("resnet20 PruningNet (" << pn.num_params() << " parameters), " << kSteps
                               << " steps of 128 images on 1 thread: " << kSteps / r.seconds
                               << " steps/s; mean loss " << first << " (first " << kWindow
                               << ") -> " << last << " (last " << kWindow << ")");
  CHECK(last < 0.75 * first);
}
