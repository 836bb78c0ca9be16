// bench search_quality: how good a front each strategy finds for the same evaluation budget.
// Every strategy searches the same joint space (keep fractions and 8-bit weights) of the same
// trained network on cpu-onednn, latency predicted by one lookup table (profiled by the first
// run, then reused), accuracy by bn-recal, over several seeds:
//   random     `evaluations` = N
//   evolution  population x iterations = N (about a quarter of each generation are parents)
//   nsga2      population x generations = N
//   netadapt   progressive: steps x (one proposal per channel group) ~ N, kNetAdaptReduction
//              of latency per step; its actual count is reported. It is deterministic, so it
//              runs once and that run stands for every seed.
// Quality is measured on each run's own candidates (kind "search", successful):
//   hypervolume               over (1 - accuracy, latency, size), every run normalized with ONE
//                             set of bounds (objective_bounds over every point of every run),
//                             reference kNormalizedReference in every objective; mean over seeds
//   accuracy_at_half_latency  best accuracy among candidates with latency <= half the
//                             uncompressed network's; mean over seeds, and for "uniform" the best
//                             uniform baseline under that latency
// Prints a table and the targets, and writes {"hypervolume", "hypervolume_std",
// "accuracy_at_half_latency", "runs", "targets", "context"}.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

#include "bench/bench_util.h"
#include "core/stats.h"
#include "core/timing.h"
#include "graph/serialize.h"
#include "policies/compress.h"
#include "search/config.h"
#include "search/controller.h"
#include "search/moo.h"

using namespace tightfit;

namespace {

struct Args : bench::CommonArgs {
  Args() {
    model = "runs/models/resnet20.tfn";
    zoo = "resnet20";
    out = "bench/results/search_quality.json";
    results = "bench/results/runs";
    threads = 2;  // LibTorch threads of each accuracy evaluation
  }
  std::string strategies = "random,evolution,nsga2,netadapt";
  int64_t evaluations = 120;
  int seeds = 3;
  int64_t validation_images = 1000;
  int64_t bn_batches = 5;
};

constexpr int kTrainEpochs = 2;
constexpr double kHalf = 0.5;  // latency limit, as a fraction of the uncompressed network's
constexpr double kTargetGainPoints = 1.0;
// Generations (iterations) of evolution and nsga2 at most; each has at least kMinPopulation.
constexpr int64_t kMaxGenerations = 8;
// NetAdapt's default 10% per step is more than one ResNet-20 channel group alone can give once
// a few steps have pruned; small steps keep every group in play.
constexpr double kNetAdaptReduction = 0.04;
constexpr int64_t kMinPopulation = 12;

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

/// Generations of a generational strategy for `n` evaluations: as many as fit with at least
/// kMinPopulation members each (at least one, at most kMaxGenerations).
int64_t generations_for(int64_t n) {
  return std::clamp<int64_t>(n / kMinPopulation, 1, kMaxGenerations);
}

/// The strategy section for `name` with budget `n`; `channel_groups` sizes netadapt's steps.
nlohmann::json strategy_section(const std::string& name, int64_t n, size_t channel_groups) {
  if (name == "random") return {{"name", name}, {"evaluations", n}};
  const int64_t generations = generations_for(n);
  const int64_t population = std::max<int64_t>(2, n / generations);
  if (name == "evolution") {
    const int64_t mutations = population / 2;
    return {{"name", name},
            {"population", population},
            {"parents", std::max<int64_t>(2, population / 4)},
            {"mutations", mutations},
            {"crossovers", population - mutations},
            {"iterations", generations}};
  }
  if (name == "nsga2")
    return {{"name", name}, {"population", population}, {"generations", generations}};
  if (name == "netadapt") {
    const auto groups = static_cast<int64_t>(std::max<size_t>(1, channel_groups));
    return {{"name", name},
            {"steps", std::max<int64_t>(1, (n + groups / 2) / groups)},
            {"reduction", kNetAdaptReduction}};
  }
  throw std::runtime_error("unknown strategy '" + name +
                           "'; this bench knows random, evolution, nsga2, netadapt");
}

struct RunResult {
  std::string strategy;
  uint64_t seed = 0;
  search::SearchResult result;
  double seconds = 0;
  bool profiled_table = false;
};

/// Objective vectors (1 - accuracy, latency, size) of the run's successful evaluations of `kind`.
std::vector<std::vector<double>> objectives(const search::SearchResult& r,
                                            const std::string& kind) {
  std::vector<std::vector<double>> out;
  for (const auto& e : r.evaluations)
    if (e.ok() && e.kind == kind)
      out.push_back({1.0 - e.accuracy, e.latency_ms, static_cast<double>(e.size_bytes)});
  return out;
}

/// Best accuracy among the successful evaluations of `kind` within `latency_ms`.
std::optional<double> best_accuracy_within(const search::SearchResult& r, const std::string& kind,
                                           double latency_ms) {
  std::optional<double> best;
  for (const auto& e : r.evaluations)
    if (e.ok() && e.kind == kind && e.latency_ms <= latency_ms)
      best = std::max(best.value_or(0.0), e.accuracy);
  return best;
}

nlohmann::json or_null(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench search_quality: hypervolume and accuracy at half latency per strategy"};
  Args a;
  bench::CommonHelp common;
  common.model = "Trained network file (trained first when missing)";
  common.zoo = true;
  common.results = "Folder of the latency table and search runs";
  common.threads = "LibTorch threads of each accuracy evaluation";
  bench::add_common_options(app, a, common);
  app.add_option("--strategies", a.strategies, "Comma-separated strategies")->capture_default_str();
  app.add_option("--evaluations", a.evaluations, "Evaluation budget of every strategy")
      ->capture_default_str();
  app.add_option("--seeds", a.seeds, "Seeds per strategy (1..N)")->capture_default_str();
  app.add_option("--validation-images", a.validation_images, "Images scored per candidate")
      ->capture_default_str();
  app.add_option("--bn-batches", a.bn_batches, "BatchNorm recalibration batches")
      ->capture_default_str();
  if (const auto rc = bench::parse_args(app, argc, argv)) return *rc;

  try {
    const auto t_bench = Clock::now();
    auto elapsed = [&] { return seconds_since(t_bench); };
    if (!std::filesystem::exists(a.model)) {
      const auto data = datasets::load_fashion_mnist();
      bench::trained_model(a.model, a.zoo, kTrainEpochs, data, a.threads);
    }
    const auto net = graph::load_network(a.model);
    const size_t channel_groups = policies::decision_points(net).channels.size();
    const std::string stem = std::filesystem::path(a.model).stem().string();
    const std::string lut_path = a.results + "/lut_" + stem + ".json";
    const auto strategies = split_list(a.strategies);

    std::vector<RunResult> runs;
    for (const auto& strategy : strategies) {
      const int seeds = strategy == "netadapt" ? 1 : a.seeds;
      for (int s = 1; s <= seeds; ++s) {
        const auto seed = static_cast<uint64_t>(s);
        const nlohmann::json config_json = {
            {"seed", seed},
            {"model", {{"path", a.model}}},
            {"space",
             {{"kind", "joint"},
              {"keep", {0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0}},
              {"weight_bits", {32, 8}},
              {"channel_multiple", 8}}},
            {"strategy", strategy_section(strategy, a.evaluations, channel_groups)},
            {"evaluator",
             {{"name", "bn-recal"},
              {"bn_batches", a.bn_batches},
              {"validation_images", a.validation_images},
              {"threads", a.threads}}},
            {"target", {{"name", "cpu-onednn"}, {"threads", 1}, {"batch", 1}}},
            {"cost", {{"latency", "lut"}, {"table", lut_path}}}};
        const auto config = search::SearchConfig::from_json(config_json, "search_quality");
        search::RunOptions opts;
        opts.out_dir = a.results + "/search_quality/" + strategy + "_" + std::to_string(seed);
        opts.progress = false;
        std::filesystem::remove_all(opts.out_dir);  // a journal is never overwritten
        RunResult r;
        r.strategy = strategy;
        r.seed = seed;
        r.profiled_table = !std::filesystem::exists(lut_path);
        const auto t0 = Clock::now();
        r.result = search::run_search(config, opts);
        r.seconds = seconds_since(t0);
        std::fprintf(stderr, "[bench] %s seed %d: %.0f s%s (total %.0f s)\n", strategy.c_str(), s,
                     r.seconds, r.profiled_table ? ", table profiled" : "", elapsed());
        runs.push_back(std::move(r));
      }
    }

    // One set of bounds for every run, so the hypervolumes compare.
    std::vector<std::vector<double>> all_points;
    for (const auto& r : runs) {
      const auto p = objectives(r.result, "search");
      all_points.insert(all_points.end(), p.begin(), p.end());
    }
    if (all_points.empty()) throw std::runtime_error("no run produced a successful candidate");
    const auto bounds = search::objective_bounds(all_points);
    const std::vector<double> reference(3, search::kNormalizedReference);

    nlohmann::json result;
    std::map<std::string, std::vector<double>> hv, acc, evals, secs;
    std::optional<double> uniform_acc;
    for (const auto& r : runs) {
      const auto points = objectives(r.result, "search");
      const double h =
          points.empty() ? 0 : search::hypervolume(search::normalize(points, bounds), reference);
      const double half_ms = kHalf * r.result.baseline.latency_ms;
      const auto best = best_accuracy_within(r.result, "search", half_ms);
      const auto uniform = best_accuracy_within(r.result, "uniform", half_ms);
      if (uniform) uniform_acc = std::max(uniform_acc.value_or(0.0), *uniform);
      int64_t count = 0;
      for (const auto& e : r.result.evaluations) count += e.kind == "search";
      hv[r.strategy].push_back(h);
      if (best) acc[r.strategy].push_back(*best);
      evals[r.strategy].push_back(static_cast<double>(count));
      secs[r.strategy].push_back(r.seconds);
      result["runs"].push_back({{"strategy", r.strategy},
                                {"seed", r.seed},
                                {"hypervolume", h},
                                {"accuracy_at_half_latency", or_null(best)},
                                {"uniform_accuracy_at_half_latency", or_null(uniform)},
                                {"baseline_accuracy", r.result.baseline.accuracy},
                                {"baseline_latency_ms", r.result.baseline.latency_ms},
                                {"evaluations", count},
                                {"successful", points.size()},
                                {"front_size", r.result.front.size()},
                                {"seconds", r.seconds},
                                {"profiled_table", r.profiled_table},
                                {"strategy_config", r.result.context["config"]["strategy"]}});
    }

    std::printf(
        "search quality: %s, cpu-onednn (latency table), bn-recal (%lld images, %lld BN "
        "batches), budget %lld evaluations, %d seed(s)\n",
        stem.c_str(), static_cast<long long>(a.validation_images),
        static_cast<long long>(a.bn_batches), static_cast<long long>(a.evaluations), a.seeds);
    std::printf("%-10s %20s %14s %12s %10s\n", "strategy", "hypervolume", "acc@half_lat",
                "evaluations", "seconds");
    std::optional<double> best_searched;
    for (const auto& strategy : strategies) {
      result["hypervolume"][strategy] = tightfit::mean(hv[strategy]);
      result["hypervolume_std"][strategy] = tightfit::sample_stddev(hv[strategy]);
      std::optional<double> at_half;
      if (!acc[strategy].empty()) at_half = tightfit::mean(acc[strategy]);
      result["accuracy_at_half_latency"][strategy] = or_null(at_half);
      if (at_half) best_searched = std::max(best_searched.value_or(0.0), *at_half);
      char acc_text[32] = "none";
      if (at_half) std::snprintf(acc_text, sizeof acc_text, "%.4f", *at_half);
      std::printf("%-10s %11.4f ± %6.4f %14s %12.1f %10.1f\n", strategy.c_str(),
                  tightfit::mean(hv[strategy]), tightfit::sample_stddev(hv[strategy]), acc_text,
                  tightfit::mean(evals[strategy]), tightfit::mean(secs[strategy]));
    }
    result["accuracy_at_half_latency"]["uniform"] = or_null(uniform_acc);
    std::printf("%-10s %20s %14s\n", "uniform", "",
                uniform_acc ? std::to_string(*uniform_acc).c_str() : "none");

    const auto beats_random = [&](const std::string& s) -> nlohmann::json {
      if (!hv.count(s) || !hv.count("random")) return nullptr;
      return tightfit::mean(hv[s]) > tightfit::mean(hv["random"]);
    };
    nlohmann::json targets = {{"evolution_beats_random", beats_random("evolution")},
                              {"nsga2_beats_random", beats_random("nsga2")}};
    if (best_searched && uniform_acc) {
      const double gain = 100 * (*best_searched - *uniform_acc);
      targets["gain_over_uniform_points"] = gain;
      targets["searched_beats_uniform_by_1_point"] = gain >= kTargetGainPoints;
    } else {
      targets["searched_beats_uniform_by_1_point"] = nullptr;
    }
    result["targets"] = targets;
    std::printf(
        "\ntargets: evolution beats random on hypervolume: %s; nsga2: %s; best searched "
        "accuracy at half latency beats best uniform by >= %.0f point: %s\n",
        targets["evolution_beats_random"].dump().c_str(),
        targets["nsga2_beats_random"].dump().c_str(), kTargetGainPoints,
        targets["searched_beats_uniform_by_1_point"].dump().c_str());
    if (targets.contains("gain_over_uniform_points"))
      std::printf("gain over uniform: %+.2f points\n",
                  targets["gain_over_uniform_points"].get<double>());

    result["bounds"] = {{"ideal", bounds.ideal},
                        {"nadir", bounds.nadir},
                        {"objectives", {"1-accuracy", "latency_ms", "size_bytes"}},
                        {"reference", reference}};
    result["context"] = bench::context("search_quality", a.threads, 1,
                                       {{"model", a.model},
                                        {"strategies", a.strategies},
                                        {"evaluations", a.evaluations},
                                        {"seeds", a.seeds},
                                        {"validation_images", a.validation_images},
                                        {"bn_batches", a.bn_batches},
                                        {"latency_table", lut_path}});
    if (!runs.empty()) result["context"]["search"] = runs.front().result.context;
    result["context"]["seconds"] = elapsed();
    bench::write_json(a.out, result);
    std::printf("\nwritten: %s (%.0f s)\n", a.out.c_str(), elapsed());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench search_quality: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
