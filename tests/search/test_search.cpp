#include <torch/script.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/json.h"
#include "evaluators/cost.h"
#include "graph/executor.h"
#include "graph/serialize.h"
#include "models/zoo.h"
#include "policies/compress.h"
#include "search/config.h"
#include "search/controller.h"
#include "search/merge.h"
#include "search/outputs.h"
#include "search/pareto.h"
#include "search/strategy.h"
#include "targets/int8.h"
#include "targets/libtorch_int8.h"
#include "targets/onednn_engine.h"

using namespace tightfit;

TEST_CASE("non_dominated keeps exactly the points nothing beats", "[search][pareto]") {
  // minimize both: (1,5) (2,2) (5,1) are a front; (3,3) is beaten by (2,2); (2,2) duplicate kept.
  const std::vector<std::vector<double>> pts = {{1, 5}, {3, 3}, {2, 2}, {5, 1}, {2, 2}, {6, 6}};
  const auto front = search::non_dominated(pts);
  CHECK(front == std::vector<size_t>{0, 2, 3, 4});
  CHECK(search::dominates({1, 1}, {1, 2}));
  CHECK_FALSE(search::dominates({1, 2}, {1, 2}));
  CHECK_FALSE(search::dominates({0, 3}, {1, 2}));
}

TEST_CASE("pareto_front ignores failed candidates and sorts by latency", "[search][pareto]") {
  std::vector<search::Evaluation> evs(4);
  evs[0].accuracy = 0.9, evs[0].latency_ms = 2.0, evs[0].size_bytes = 100;
  evs[1].accuracy = 0.8, evs[1].latency_ms = 1.0, evs[1].size_bytes = 100;
  evs[2].accuracy = 0.99, evs[2].latency_ms = 0.1, evs[2].size_bytes = 1;
  evs[2].error = "failed";  // would dominate everything if it counted
  evs[3].accuracy = 0.7, evs[3].latency_ms = 1.5, evs[3].size_bytes = 200;  // dominated by 1
  CHECK(search::pareto_front(evs) == std::vector<size_t>{1, 0});
}

TEST_CASE("random strategy proposes distinct valid policies, reproducibly", "[search][random]") {
  const auto net = models::make_model("resnet8", models::default_options("resnet8"));
  const search::SearchSpace space(policies::decision_points(net), search::SpaceConfig{});
  auto run = [&](uint64_t seed) {
    auto s = search::make_strategy("random", {{"evaluations", 25}}, space, seed);
    std::vector<std::string> keys;
    for (;;) {
      const auto asked = s->ask(4);
      if (asked.empty()) break;
      CHECK(asked.size() <= 4);
      for (const auto& p : asked) {
        policies::validate(p, net);
        keys.push_back(p.key());
      }
      s->tell(std::vector<search::Evaluation>(asked.size()));
    }
    return keys;
  };
  const auto a = run(3);
  CHECK(a.size() == 25);
  CHECK(std::set<std::string>(a.begin(), a.end()).size() == a.size());
  CHECK(run(3) == a);
  CHECK(run(4) != a);
  CHECK_THROWS_WITH(search::make_strategy("random", {{"evals", 3}}, space, 1),
                    Catch::Contains("valid keys: evaluations"));
  CHECK_THROWS_WITH(search::make_strategy("nope", {}, space, 1),
                    Catch::Contains("valid strategies: evolution, netadapt, nsga2, random"));
}

TEST_CASE("the front fine-tune is on by default and configured by top_k and steps",
          "[search][config]") {
  const auto parse = [](const nlohmann::json& section) {
    nlohmann::json j = {{"model", {{"zoo", "resnet8"}}}};
    if (!section.is_discarded()) j["finetune_front"] = section;
    return search::SearchConfig::from_json(j, "test");
  };
  const auto defaults = parse(nlohmann::json::value_t::discarded);
  CHECK(defaults.front_fidelity());
  CHECK(defaults.front_top_k == 5);
  CHECK(defaults.finetune_front["steps"] == 20);
  const auto set = parse({{"top_k", 2}, {"steps", 7}, {"lr", 0.02}});
  CHECK(set.front_top_k == 2);
  CHECK(set.finetune_front["steps"] == 7);
  CHECK(set.finetune_front["validation_images"] == 1000);  // the defaults stay under
  CHECK_FALSE(set.finetune_front.contains("top_k"));
  CHECK_FALSE(parse({{"top_k", 0}}).front_fidelity());
  CHECK_FALSE(parse({{"steps", 0}}).front_fidelity());
  CHECK_FALSE(parse(nullptr).front_fidelity());
  CHECK_THROWS_WITH(parse({{"top_k", -1}}), Catch::Contains("finetune_front.top_k is -1"));
  CHECK_THROWS_WITH(parse({{"top_k", 1.5}}), Catch::Contains("top_k"));
  CHECK_THROWS_WITH(parse(3), Catch::Contains("or null for none"));
}

TEST_CASE("search config is parsed strictly", "[search][config]") {
  const auto ok = nlohmann::json::parse(R"({"model": {"zoo": "vgg_small"},
      "strategy": {"name": "random", "evaluations": 5, "ask_batch": 2},
      "target": {"name": "cpu-libtorch", "threads": 1}})");
  const auto c = search::SearchConfig::from_json(ok, "cfg");
  CHECK(c.strategy == "random");
  CHECK(c.ask_batch == 2);
  CHECK(c.strategy_config == nlohmann::json{{"evaluations", 5}});
  CHECK(c.measure.threads == 1);
  CHECK(c.hash == search::SearchConfig::from_json(ok, "cfg").hash);

  auto bad = ok;
  bad["target"]["thread"] = 2;
  CHECK_THROWS_AS(search::SearchConfig::from_json(bad, "cfg"), ConfigError);
  bad = ok;
  bad["space"] = {{"keep", {0.5, 1.5}}};
  CHECK_THROWS_WITH(search::SearchConfig::from_json(bad, "cfg"), Catch::Contains("(0, 1]"));
  bad = ok;
  bad.erase("model");
  CHECK_THROWS_WITH(search::SearchConfig::from_json(bad, "cfg"), Catch::Contains("model"));
}

TEST_CASE("a small search writes a journal and a consistent front", "[search][e2e]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("tightfit_test_search_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const auto config_json = nlohmann::json::parse(R"({
      "seed": 5, "model": {"zoo": "vgg_small"},
      "strategy": {"name": "random", "evaluations": 8, "ask_batch": 3},
      "evaluator": {"name": "bn-recal", "bn_batches": 2, "validation_images": 300},
      "target": {"name": "cpu-libtorch", "threads": 1, "warmup_runs": 2, "min_repeats": 5,
                 "min_time_ms": 5}})");
  const auto config = search::SearchConfig::from_json(config_json, "test");
  search::RunOptions opts;
  opts.out_dir = dir.string();
  opts.progress = false;
  const auto r = search::run_search(config, opts);

  // The uniform baselines (3 keep levels x {fp32, 8-bit} and 8-bit alone) come first.
  constexpr size_t kUniform = 7;
  REQUIRE(r.evaluations.size() == kUniform + 8);
  for (size_t i = 0; i < r.evaluations.size(); ++i)
    CHECK(r.evaluations[i].kind == (i < kUniform ? "uniform" : "search"));
  // Journal: a header, the baseline and every evaluation, one JSON line each, in order.
  std::ifstream journal(dir / "evaluations.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(journal, line);) lines.push_back(nlohmann::json::parse(line));
  REQUIRE(lines.size() == kUniform + 10);
  CHECK(lines[0]["format"] == "tightfit-search-journal");
  CHECK(lines[0]["config_hash"] == config.hash);
  CHECK(lines[1]["kind"] == "baseline");
  for (size_t i = 2; i < lines.size(); ++i) CHECK(lines[i]["index"] == i - 2);

  const auto front = read_json_file((dir / "front.json").string());
  REQUIRE(front["front"].size() == r.front.size());
  REQUIRE(!r.front.empty());
  for (const auto& key :
       {"policy", "accuracy", "latency_ms", "latency_spread_ms", "size_bytes", "params", "flops"}) {
    CHECK(front["baseline"].contains(key));
    for (const auto& m : front["front"]) CHECK(m.contains(key));
  }
  for (const auto& key : {"target", "threads", "cpu", "seed", "config_hash", "libtorch"})
    CHECK(front["context"].contains(key));
  // Members are mutually non-dominated.
  for (const auto& a : front["front"])
    for (const auto& b : front["front"])
      CHECK_FALSE(search::dominates({-a["accuracy"].get<double>(), a["latency_ms"].get<double>(),
                                     a["size_bytes"].get<double>()},
                                    {-b["accuracy"].get<double>(), b["latency_ms"].get<double>(),
                                     b["size_bytes"].get<double>()}));
  // Compression shows in the figures: every candidate is at most the baseline's size.
  for (const auto& e : r.evaluations) {
    CHECK(e.ok());
    CHECK(e.size_bytes <= r.baseline.size_bytes);
    CHECK(e.flops <= r.baseline.flops);
  }

  // Where the time went: every candidate computed once (the baseline too), the parts add up
  // within the loop's wall time, and they are in the results' context.
  int64_t computed = 1;
  for (const auto& e : r.evaluations) computed += e.cached ? 0 : 1;
  const auto& stats = r.stats;
  CHECK(stats.computed == computed);
  CHECK(stats.setup > 0);
  CHECK(stats.accuracy > 0);
  CHECK(stats.latency > 0);
  for (double part : {stats.apply, stats.count_cost, stats.strategy, stats.journal})
    CHECK(part >= 0);
  CHECK(stats.screen == 0);
  CHECK(stats.evaluation() + stats.apply + stats.count_cost + stats.strategy + stats.journal <=
        stats.loop);
  CHECK(stats.other() >= 0);
  CHECK(stats.overhead_share() == Approx(stats.engine() / stats.evaluation()));
  CHECK(front["context"]["run_stats"]["computed"] == computed);

  // The proxy's fidelity, on by default: the most accurate front members (up to 5) fine-tuned,
  // each accuracy after recorded and its network written, and the rank agreement reported.
  std::vector<double> accuracies;
  for (size_t i : r.front) accuracies.push_back(r.evaluations[i].accuracy);
  std::sort(accuracies.rbegin(), accuracies.rend());
  const size_t k = std::min<size_t>(5, r.front.size());
  const auto& fidelity = front["context"]["front_fidelity"];
  CHECK(fidelity["top_k"] == 5);
  CHECK(fidelity["n"] == k);
  CHECK(fidelity["finetune"]["steps"] == 20);
  size_t tuned = 0;
  for (size_t i : r.front) {
    const auto& e = r.evaluations[i];
    const bool top = e.accuracy >= accuracies[k - 1];
    INFO("member " << e.index << " accuracy " << e.accuracy);
    if (e.accuracy > accuracies[k - 1]) CHECK(e.finetuned_accuracy >= 0);
    if (!top) CHECK(e.finetuned_accuracy < 0);
    if (e.finetuned_accuracy >= 0) {
      ++tuned;
      CHECK(std::filesystem::exists(dir / "models" / (std::to_string(e.index) + ".finetuned.tfn")));
    }
  }
  CHECK(tuned == k);
  if (k >= 2) {
    CHECK(fidelity["kendall_tau"].is_number());
    CHECK_THAT(search::front_table(r), Catch::Contains("proxy fidelity: Kendall's tau"));
  }

  // Invariant 5: the same seed gives the same policies and accuracies (latency aside).
  opts.out_dir = (dir / "again").string();
  const auto again = search::run_search(config, opts);
  REQUIRE(again.evaluations.size() == r.evaluations.size());
  for (size_t i = 0; i < r.evaluations.size(); ++i) {
    CHECK(again.evaluations[i].policy.key() == r.evaluations[i].policy.key());
    CHECK(again.evaluations[i].accuracy == r.evaluations[i].accuracy);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("a search over activation bits calibrates their ranges and scores every candidate",
          "[search][e2e]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("tightfit_test_search_act_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  // HAQ's setting: weight and activation bits per layer against the bit-serial accelerator model.
  const auto config = search::SearchConfig::from_json(nlohmann::json::parse(R"({
      "seed": 3, "model": {"zoo": "resnet8"},
      "space": {"kind": "quantization", "weight_bits": [4, 8], "act_bits": [4, 8, 32]},
      "strategy": {"name": "random", "evaluations": 6},
      "evaluator": {"name": "subset", "validation_images": 200},
      "target": {"name": "analytic-bitfusion"}})"),
                                                      "test");
  search::RunOptions opts;
  opts.out_dir = dir.string();
  opts.progress = false;
  const auto r = search::run_search(config, opts);
  int64_t with_act_bits = 0;
  for (const auto& e : r.evaluations) {
    INFO(e.policy.to_json().dump() << ": " << e.error);
    CHECK(e.ok());
    if (e.kind != "search") continue;
    bool quantizes_inputs = false;
    for (const auto& [layer, bits] : e.policy.act_bits) quantizes_inputs |= bits < 32;
    with_act_bits += quantizes_inputs ? 1 : 0;
  }
  CHECK(with_act_bits >= 3);
  // Baselines stay inside the space: 8-bit weights, then 8-bit weights and inputs; none pruned.
  REQUIRE(r.evaluations.size() >= 3);
  CHECK(r.evaluations[1].kind == "uniform");
  CHECK(r.evaluations[2].kind == "search");
  for (const auto& e : r.evaluations) CHECK(e.policy.keep.empty());
  // The int8 deployment (8-bit weights and inputs everywhere) is among the baselines.
  const auto w8a8 = search::SearchSpace(policies::decision_points(models::make_model(
                                            "resnet8", models::default_options("resnet8"))),
                                        config.space)
                        .uniform(1.0, 8, 8);
  CHECK(std::any_of(r.evaluations.begin(), r.evaluations.end(), [&](const search::Evaluation& e) {
    return e.kind == "uniform" && e.policy.key() == w8a8.key();
  }));
  // The calibration batches come from the seed: a second run scores every candidate alike.
  opts.out_dir = (dir / "again").string();
  const auto again = search::run_search(config, opts);
  REQUIRE(again.evaluations.size() == r.evaluations.size());
  for (size_t i = 0; i < r.evaluations.size(); ++i)
    CHECK(again.evaluations[i].accuracy == r.evaluations[i].accuracy);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a candidate the budget filter admitted is compressed once", "[search][e2e]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("tightfit_test_search_once_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  // Evolution under a FLOPs limit compresses every proposal to count its FLOPs before asking
  // for it; the controller evaluates that network rather than compressing the policy again.
  auto config_json = nlohmann::json::parse(R"({
      "seed": 2, "model": {"zoo": "resnet8"},
      "space": {"kind": "pruning"},
      "strategy": {"name": "evolution", "population": 6, "parents": 2, "mutations": 3,
                   "crossovers": 3, "iterations": 2, "max_flops": 9000000},
      "evaluator": {"name": "subset", "validation_images": 100},
      "target": {"name": "analytic-roofline"}})");
  search::RunOptions opts;
  opts.out_dir = dir.string();
  opts.progress = false;
  const auto config = search::SearchConfig::from_json(config_json, "test");
  const auto r = search::run_search(config, opts);
  int64_t searched = 0;
  for (const auto& e : r.evaluations) {
    CHECK(e.ok());
    if (e.kind != "search") continue;
    CHECK(e.flops <= 9000000);
    searched += e.cached ? 0 : 1;
  }
  REQUIRE(searched > 0);
  CHECK(r.stats.reused_compressions == searched);
  // The networks evaluated are the policies' own: compressed afresh, they count the same.
  const auto net = models::make_model("resnet8", models::default_options("resnet8"));
  policies::ApplyOptions apply_opts;
  apply_opts.channel_multiple = config.space.channel_multiple;
  for (const auto& e : r.evaluations) {
    if (e.kind != "search") continue;
    const auto cost = evaluators::count_cost(policies::apply(net, e.policy, apply_opts));
    CHECK(cost.flops == e.flops);
    CHECK(cost.size_bytes == e.size_bytes);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("a search checks its evaluator's config before it loads anything", "[search][config]") {
  // The data folder does not exist: an error about it would mean the data was read first.
  const auto config =
      search::SearchConfig::from_json(nlohmann::json::parse(R"({"model": {"zoo": "vgg_small"},
          "data": {"dir": "/nonexistent/tightfit-data"},
          "evaluator": {"name": "bn-recal", "validation_images": 0},
          "target": {"name": "analytic-roofline"}})"),
                                      "cfg");
  search::RunOptions opts;
  opts.out_dir = (std::filesystem::temp_directory_path() /
                  ("tightfit_evaluator_first_" + std::to_string(::getpid())))
                     .string();
  opts.progress = false;
  CHECK_THROWS_WITH(search::run_search(config, opts), Catch::Contains("validation_images"));
  CHECK_FALSE(std::filesystem::exists(std::filesystem::path(opts.out_dir) / "evaluations.jsonl"));
  std::filesystem::remove_all(opts.out_dir);
}

TEST_CASE("outputs.export writes every front member as TorchScript computing what tightfit does",
          "[search][e2e][export]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("tightfit_test_search_export_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto config_json = nlohmann::json::parse(R"({
      "seed": 3, "model": {"zoo": "vgg_small"},
      "strategy": {"name": "random", "evaluations": 4},
      "evaluator": {"name": "subset", "validation_images": 100},
      "target": {"name": "analytic-roofline"},
      "baselines": {"keep": [0.5]},
      "outputs": {"export": "torchscript"}})");
  search::RunOptions opts;
  opts.out_dir = dir.string();
  opts.progress = false;
  const auto r = search::run_search(search::SearchConfig::from_json(config_json, "test"), opts);
  REQUIRE(!r.front.empty());
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({3, 1, 28, 28});
  for (size_t i : r.front) {
    const auto stem = dir / "models" / std::to_string(r.evaluations[i].index);
    INFO(stem.string());
    const auto net = graph::load_network(stem.string() + ".tfn");
    graph::Executor ex(net);
    ex.train(false);
    const auto want = ex.forward(x);
    auto module = torch::jit::load(stem.string() + ".pt");
    module.eval();
    const auto got = module.forward({x}).toTensor();
    CHECK((got - want).abs().max().item<double>() / want.abs().max().item<double>() < 1e-4);
    CHECK(r.evaluations[i].params == net.num_params());
  }
  // "torchscript-int8": int8 layers as LibTorch's quantized ops, computing what cpu-libtorch's
  // int8 model computes (how many run in int8 depends on the CPU: VNNI or not).
  std::filesystem::remove_all(dir);
  auto int8_json = config_json;
  // Every member but the baseline has 8-bit weights and inputs.
  int8_json["space"] = {
      {"kind", "joint"}, {"keep", {0.5, 1.0}}, {"weight_bits", {8}}, {"act_bits", {8}}};
  int8_json["outputs"]["export"] = "torchscript-int8";
  const auto r8 = search::run_search(search::SearchConfig::from_json(int8_json, "test"), opts);
  REQUIRE(!r8.front.empty());
  const at::QEngine previous = at::globalContext().qEngine();
  at::globalContext().setQEngine(at::QEngine::ONEDNN);
  int64_t int8_layers = 0;
  for (size_t i : r8.front) {
    const auto stem = dir / "models" / std::to_string(r8.evaluations[i].index);
    INFO(stem.string());
    const auto net = graph::load_network(stem.string() + ".tfn");
    targets::LibTorchInt8Model model(net);
    int8_layers += model.int8_layers();
    const auto want = model.forward(x);
    auto module = torch::jit::load(stem.string() + ".pt");
    module.eval();
    const auto got = module.forward({x}).toTensor();
    CHECK((got - want).abs().max().item<double>() / want.abs().max().item<double>() < 1e-5);
  }
  at::globalContext().setQEngine(previous);
  // With VNNI every 8-bit layer fed by 8-bit activations runs in int8; without it, 8-bit
  // weights on full-range inputs stay fp32.
  if (targets::cpu_has_vnni()) CHECK(int8_layers > 0);
  // Any other format is a config error.
  config_json["outputs"]["export"] = "onnx";
  CHECK_THROWS_WITH(search::SearchConfig::from_json(config_json, "test"),
                    Catch::Contains("outputs.export is 'onnx'"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("relative budgets are fractions of the uncompressed network's own figures",
          "[search][e2e][budget]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("tightfit_test_search_relative_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto config_json = nlohmann::json::parse(R"({
      "seed": 5, "model": {"zoo": "vgg_small"},
      "strategy": {"name": "random", "evaluations": 6},
      "evaluator": {"name": "subset", "validation_images": 100},
      "target": {"name": "analytic-roofline"},
      "budget": {"latency_fraction": 0.5, "size_fraction": 0.6, "size_bytes": 100000000,
                 "flops_fraction": 0.9, "flops": 1000}})");
  // The flops limit: the absolute 1000 is stricter than 90%, and no candidate meets it.
  search::RunOptions opts;
  opts.out_dir = dir.string();
  opts.progress = false;
  // Nothing in the space reaches 1000 FLOPs: refused once the baseline gives the figures.
  CHECK_THROWS_WITH(search::run_search(search::SearchConfig::from_json(config_json, "test"), opts),
                    Catch::Contains("cannot be met") && Catch::Contains("\"flops\":1000"));
  std::filesystem::remove_all(dir);
  config_json["budget"].erase("flops");
  const auto r = search::run_search(search::SearchConfig::from_json(config_json, "test"), opts);
  const auto& b = r.baseline;
  // Each relative limit resolved on the baseline; the absolute size limit is the looser one.
  CHECK(r.budget.latency_ms == Approx(0.5 * b.latency_ms));
  CHECK(r.budget.size_bytes ==
        static_cast<int64_t>(std::floor(0.6 * static_cast<double>(b.size_bytes))));
  CHECK(r.budget.flops == static_cast<int64_t>(std::floor(0.9 * static_cast<double>(b.flops))));
  const auto best = nlohmann::json::parse(std::ifstream(dir / "best.json"));
  CHECK(best["budget"]["latency_fraction"] == 0.5);
  CHECK(best["budget"]["latency_ms"].get<double>() == Approx(0.5 * b.latency_ms));
  if (best["met"].get<bool>()) {
    CHECK(best["best"]["latency_ms"].get<double>() <= 0.5 * b.latency_ms);
    CHECK(best["best"]["size_bytes"].get<int64_t>() <= r.budget.size_bytes);
  }
  // A fraction outside (0, 1] is a config error naming the key.
  config_json["budget"]["latency_fraction"] = 1.5;
  CHECK_THROWS_WITH(search::SearchConfig::from_json(config_json, "test"),
                    Catch::Contains("budget.latency_fraction is 1.5"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("the front's int8 column counts the layers that run in int8 on the target",
          "[search][e2e][int8]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("tightfit_test_search_int8_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const auto config_json = nlohmann::json::parse(R"({
      "seed": 2, "model": {"zoo": "vgg_small"},
      "space": {"kind": "joint", "keep": [0.75, 1.0], "weight_bits": [8], "act_bits": [8]},
      "strategy": {"name": "random", "evaluations": 2}, "baselines": {"keep": [1.0]},
      "evaluator": {"name": "subset", "validation_images": 50},
      "target": {"name": "cpu-onednn", "precision": "int8", "warmup_runs": 1, "min_repeats": 3,
                 "min_time_ms": 1}})");
  search::RunOptions opts;
  opts.out_dir = dir.string();
  opts.progress = false;
  const auto r = search::run_search(search::SearchConfig::from_json(config_json, "test"), opts);
  REQUIRE(!r.front.empty());
  CHECK(r.baseline.int8_layers == 0);
  int64_t most = 0;
  for (size_t i : r.front) {
    const auto& e = r.evaluations[i];
    INFO("member " << e.index << ": " << e.policy.to_json().dump());
    const auto net =
        graph::load_network((dir / "models" / (std::to_string(e.index) + ".tfn")).string());
    // What the engine compiles in int8: the first layer (signed pixels in) runs in fp32, and
    // without VNNI so do 8-bit weights on full-range inputs.
    CHECK(e.int8_layers == targets::OneDnnEngine(net, 1, "int8").int8_layers());
    CHECK(e.int8_layers < static_cast<int64_t>(e.policy.weight_bits.size()));
    most = std::max(most, e.int8_layers);
  }
  // Every candidate but the baseline is 8-bit throughout; one of them is the fastest, so on
  // the front.
  if (targets::cpu_has_vnni()) CHECK(most > 0);
  const std::string table = search::front_table(r);
  CHECK_THAT(table, Catch::Contains("int8"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("a search over ranks and methods with a latency table and an \"auto\" channel multiple",
          "[search][e2e][lut]") {
  // The search resolves "auto" from latency curves it times on the target, profiles a table
  // that covers every factorized layer the space reaches, by either factorization (and keeps
  // the curves), and a second run reads the multiple from that table. Criteria and
  // factorizations are genes: both show up in the policies.
  const auto dir = std::filesystem::temp_directory_path() /
                   ("tightfit_test_search_rank_lut_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto config_json = nlohmann::json::parse(R"({
      "seed": 3, "model": {"zoo": "vgg_small"},
      "space": {"kind": "joint", "keep": [0.5, 1.0], "weight_bits": [32], "rank": [1.0, 0.5],
                "channel_multiple": "auto", "criterion": ["l1", "fpgm"],
                "factorization": ["tucker2", "spatial"]},
      "strategy": {"name": "random", "evaluations": 12}, "baselines": {"keep": [0.5]},
      "evaluator": {"name": "subset", "validation_images": 50}, "finetune_front": {"top_k": 2},
      "target": {"name": "cpu-onednn", "warmup_runs": 1, "min_repeats": 3, "min_time_ms": 1}})");
  config_json["cost"] = {{"latency", "lut"}, {"table", (dir / "table.json").string()}};
  search::RunOptions opts;
  opts.out_dir = (dir / "run1").string();
  opts.progress = false;
  const auto r = search::run_search(search::SearchConfig::from_json(config_json, "test"), opts);
  const auto& resolved = r.context.at("channel_multiple_auto");
  CHECK(resolved["from"] == "latency curves");
  const int64_t multiple = resolved["auto"].get<int64_t>();
  CHECK(r.context["channel_multiple"].get<int64_t>() == multiple);
  CHECK(std::set<int64_t>{1, 2, 4, 8, 16, 32, 64}.count(multiple) == 1);
  int factorized = 0, spatial = 0, fpgm = 0;
  for (const auto& e : r.evaluations) {
    INFO(e.policy.to_json().dump() << ": " << e.error);
    CHECK(e.ok());  // every layer of every candidate has its entry
    CHECK(e.latency_source == "lut");
    factorized += !e.policy.rank.empty();
    spatial += !e.policy.factorizations.empty();
    fpgm += !e.policy.criteria.empty();
  }
  CHECK(factorized > 0);
  CHECK(spatial > 0);
  CHECK(fpgm > 0);
  for (size_t i : r.front) CHECK(r.evaluations[i].measured_latency_ms > 0);  // timed at the end
  const auto table = read_json_file((dir / "table.json").string());
  CHECK(table["preferred_channel_multiple"].get<int64_t>() == multiple);
  CHECK(table["channel_curves"].size() == 3);

  opts.out_dir = (dir / "run2").string();
  const auto again = search::run_search(search::SearchConfig::from_json(config_json, "test"), opts);
  CHECK(again.context.at("channel_multiple_auto")["from"] == "latency table");
  CHECK(again.context["channel_multiple"].get<int64_t>() == multiple);
  std::filesystem::remove_all(dir);
}

TEST_CASE("merge makes one front of many runs and names those that are missing or unfinished",
          "[search][merge]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("tightfit_test_merge_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto config_json = nlohmann::json::parse(R"({
      "model": {"zoo": "vgg_small"}, "strategy": {"name": "random", "evaluations": 6},
      "evaluator": {"name": "subset", "validation_images": 100}, "finetune_front": null,
      "target": {"name": "analytic-roofline"}})");
  search::RunOptions opts;
  opts.progress = false;
  std::vector<std::string> runs;
  for (int seed : {1, 2}) {
    config_json["seed"] = seed;
    opts.out_dir = (dir / ("seed" + std::to_string(seed))).string();
    search::run_search(search::SearchConfig::from_json(config_json, "test"), opts);
    runs.push_back(opts.out_dir);
  }
  std::filesystem::create_directories(dir / "unfinished");
  std::ofstream(dir / "unfinished" / "evaluations.jsonl") << "{}\n";
  runs.push_back((dir / "unfinished").string());
  runs.push_back((dir / "missing").string());

  const auto merged = search::merge_runs(runs);
  REQUIRE(merged.runs.size() == 4);
  CHECK(merged.runs[0].status == "finished");
  CHECK(merged.runs[1].status == "finished");
  CHECK(merged.runs[2].status == "unfinished");
  CHECK(merged.runs[3].status == "missing");
  // The merged front is the non-dominated part of the union of the runs' fronts.
  const auto point = [](const nlohmann::json& m) {
    return std::vector<double>{-m["accuracy"].get<double>(), m["latency_ms"].get<double>(),
                               m["size_bytes"].get<double>()};
  };
  std::vector<nlohmann::json> all;
  for (size_t r = 0; r < 2; ++r) {
    const auto doc = read_json_file(runs[r] + "/front.json");
    for (const auto& m : doc["front"]) {
      all.push_back(m);
      all.back()["run"] = runs[r];
    }
  }
  const auto& front = merged.doc["front"];
  REQUIRE(!front.empty());
  for (const auto& m : front) {
    CHECK(std::find(all.begin(), all.end(), m) != all.end());  // a member of its run's front
    for (const auto& other : all) CHECK_FALSE(search::dominates(point(other), point(m)));
  }
  for (const auto& m : all)  // and every member left out is dominated by one kept
    if (std::find(front.begin(), front.end(), m) == front.end())
      CHECK(std::any_of(front.begin(), front.end(), [&](const nlohmann::json& k) {
        return search::dominates(point(k), point(m)) || point(k) == point(m);
      }));
  search::write_merge(merged, (dir / "merged").string());
  CHECK(std::filesystem::exists(dir / "merged" / "report.html"));
  CHECK(read_json_file((dir / "merged" / "front.json").string())["front"] == front);

  // Runs of another model cannot share the front; nothing finished is an error too.
  config_json["model"]["zoo"] = "resnet8";
  opts.out_dir = (dir / "resnet8").string();
  search::run_search(search::SearchConfig::from_json(config_json, "test"), opts);
  CHECK_THROWS_WITH(search::merge_runs({runs[0], opts.out_dir}),
                    Catch::Contains("cannot share one front") && Catch::Contains("resnet8"));
  CHECK_THROWS_WITH(search::merge_runs({runs[2], runs[3]}), Catch::Contains("has finished"));
  std::filesystem::remove_all(dir);
}
