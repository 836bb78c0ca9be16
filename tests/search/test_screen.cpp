// Pre-screening with the learned accuracy predictor: what gets screened out, and that the
// screener's state is a function of the run's evaluations alone (so resume screens alike).

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "core/errors.h"
#include "datasets/fashion_mnist.h"
#include "graph/serialize.h"
#include "models/train.h"
#include "models/zoo.h"
#include "policies/compress.h"
#include "search/config.h"
#include "search/controller.h"
#include "search/screen.h"
#include "tests/search/resnet8.h"

using namespace tightfit;

namespace {

constexpr auto points = test_support::resnet8_points;

/// Accuracy grows with the mean keep fraction; latency and size too.
search::Evaluation synthetic(double keep, int64_t index) {
  search::Evaluation e;
  e.index = index;
  for (const auto& c : points().channels) e.policy.keep[c.id] = keep;
  e.accuracy = 0.3 + 0.6 * keep;
  e.latency_ms = keep;
  e.size_bytes = static_cast<int64_t>(1000 * keep);
  return e;
}

std::vector<search::Evaluation> history(size_t n) {
  std::mt19937_64 rng(5);
  const std::vector<double> keeps = {0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0};
  std::vector<search::Evaluation> h;
  for (size_t i = 0; i < n; ++i) {
    auto e = synthetic(keeps[rng() % keeps.size()], static_cast<int64_t>(i));
    // Vary single groups so the encodings differ.
    const auto& c = points().channels[rng() % points().channels.size()];
    e.policy.keep[c.id] = keeps[rng() % keeps.size()];
    h.push_back(e);
  }
  return h;
}

search::ScreenConfig config() {
  return search::ScreenConfig::from_json(
      {{"min_samples", 20}, {"refit_every", 10}, {"seed", 1}, {"margin", 1.0}}, "screen");
}

}  // namespace

TEST_CASE("the screener skips candidates predicted to be dominated", "[search][screen]") {
  const search::SearchSpace space(points(), {});
  search::Screener s(config(), space);
  auto h = history(15);
  // Too few real scores: nothing is screened.
  auto slow_small = synthetic(0.25, 100);
  slow_small.latency_ms = 5.0;  // as small a network as any, yet slower than everything
  slow_small.size_bytes = 5000;
  CHECK_FALSE(s.screen(slow_small, h));
  h = history(45);
  const auto predicted = s.screen(slow_small, h);
  REQUIRE(predicted);
  CHECK(*predicted == Approx(0.45).margin(0.1));
  // A candidate as fast and small as the best ones is scored.
  auto fast = synthetic(0.25, 101);
  fast.latency_ms = 0.01;
  fast.size_bytes = 1;
  CHECK_FALSE(s.screen(fast, h));
  // Predicted and failed evaluations never count as real scores.
  auto predicted_eval = synthetic(1.0, 102);
  predicted_eval.accuracy_source = "predictor";
  CHECK_FALSE(search::is_real_score(predicted_eval));
  const auto summary = s.summary();
  CHECK(summary["fits"] == 1);
  CHECK(summary["fitted_on"] == 40);
  CHECK(summary["screened"] == 1);
}

TEST_CASE("the screener's state depends only on the evaluations so far", "[search][screen]") {
  const auto h = history(45);
  auto probe = synthetic(0.5, 200);
  probe.latency_ms = 3.0;
  probe.size_bytes = 3000;
  // One screener saw the run grow step by step; another starts at the end (a resumed run).
  const search::SearchSpace space(points(), {});
  search::Screener grown(config(), space), resumed(config(), space);
  for (size_t n = 1; n <= h.size(); ++n)
    grown.screen(probe, std::vector<search::Evaluation>(h.begin(), h.begin() + n));
  const auto a = grown.screen(probe, h);
  const auto b = resumed.screen(probe, h);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a == *b);
}

TEST_CASE("screen config is strict", "[search][screen]") {
  CHECK_THROWS_WITH(search::ScreenConfig::from_json({{"hiden", 3}}, "screen"),
                    Catch::Contains("valid keys"));
  CHECK_THROWS_AS(search::ScreenConfig::from_json({{"margin", -1}}, "screen"), ConfigError);
  CHECK_THROWS_AS(search::ScreenConfig::from_json({{"refit_every", 0}}, "screen"), ConfigError);
  CHECK(search::ScreenConfig::from_json(config().to_json(), "screen").to_json() ==
        config().to_json());
}

TEST_CASE("a search with a screen journals predicted candidates and keeps them off the front",
          "[search][screen][e2e]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("tightfit_test_screen_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  // A briefly trained network: accuracy must depend on the policy for the screen to learn it.
  auto net = models::make_model("vgg_small", models::default_options("vgg_small"));
  datasets::SplitOptions split;
  split.validation_count = 1000;
  const auto data = datasets::load_fashion_mnist(datasets::kFashionMnistDir, split);
  models::TrainOptions train;
  train.epochs = 1;
  train.max_steps = 150;
  train.batch_size = 64;
  train.lr = 3e-3;
  train.threads = 1;
  train.progress = false;
  train.final_evaluation = false;
  models::train_model(net, data, train);
  const auto model = (dir / "vgg_small.tfn").string();
  graph::save_network(net, model);

  const nlohmann::json config_json = {
      {"seed", 3},
      {"model", {{"path", model}}},
      {"space", {{"kind", "pruning"}, {"keep", {0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0}}}},
      {"strategy", {{"name", "random"}, {"evaluations", 60}, {"ask_batch", 4}}},
      {"evaluator",
       {{"name", "bn-recal"}, {"bn_batches", 2}, {"validation_images", 300}, {"threads", 1}}},
      {"target", {{"name", "analytic-roofline"}}},
      {"screen", {{"min_samples", 15}, {"refit_every", 10}, {"margin", 0.0}, {"seed", 1}}}};
  const auto config = search::SearchConfig::from_json(config_json, "test");
  search::RunOptions opts;
  opts.out_dir = (dir / "run").string();
  opts.progress = false;
  const auto r = search::run_search(config, opts);

  int64_t predicted = 0;
  std::set<int64_t> predicted_index;
  for (const auto& e : r.evaluations)
    if (e.accuracy_source == "predictor") {
      ++predicted;
      predicted_index.insert(e.index);
      CHECK(e.kind == "search");
      CHECK(e.ok());
    }
  const auto& summary = r.context.at("screen");
  CHECK(summary.at("fits").get<int64_t>() >= 1);
  CHECK(summary.at("screened").get<int64_t>() == predicted);
  CHECK(predicted > 0);
  CHECK(r.stats.screen > 0);
  // Never on the front, in front.json or best; the journal says where each accuracy came from.
  for (size_t i : r.front) CHECK(r.evaluations[i].accuracy_source == "proxy");
  std::ifstream front_file(dir / "run" / "front.json");
  const auto front = nlohmann::json::parse(front_file);
  for (const auto& m : front.at("front"))
    CHECK(predicted_index.count(m.at("index").get<int64_t>()) == 0);
  std::ifstream journal(dir / "run" / "evaluations.jsonl");
  int64_t journaled = 0;
  for (std::string line; std::getline(journal, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.value("accuracy_source", "") == "predictor") ++journaled;
  }
  CHECK(journaled == predicted);
  std::filesystem::remove_all(dir);
}
