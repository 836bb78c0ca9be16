// bench search_overhead: what the search engine itself costs per candidate, and what a second
// accuracy worker buys.
//   overhead_share     One random search (LUT latency cost), timed inside the controller
//                      (search::RunStats): engine time (the search loop's wall time minus the
//                      evaluations' latency prediction and accuracy scoring: applying policies,
//                      counting size and FLOPs, the strategy, the journal with its fsyncs, keys,
//                      caches, progress) over evaluation time (prediction + accuracy).
//   speedup_2_threads  The same search with evaluator "parallel": 2 over "parallel": 1 (one
//                      LibTorch thread per evaluation in both): candidates per second of the
//                      strategy's batches (the evaluations' eval_seconds, summed).
// Prints a table and writes {"overhead_share", "speedup_2_threads", "overhead", "parallel",
// "context"}.

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "bench/bench_util.h"
#include "core/timing.h"
#include "search/config.h"
#include "search/controller.h"

using namespace tightfit;

namespace {

struct Args : bench::CommonArgs {
  Args() {
    model = "runs/models/vgg_small.tfn";
    out = "bench/results/search_overhead.json";
    results = "bench/results/runs/search_overhead";
  }
  int evaluations = 40;
  int64_t validation_images = 1000;
  int64_t bn_batches = 5;
};

/// The search of this bench; `parallel` accuracy workers, one LibTorch thread each.
nlohmann::json search_config(const Args& a, const std::string& lut_path, int64_t parallel,
                             int evaluations) {
  return {{"seed", a.seed},
          {"model", {{"path", a.model}}},
          {"space",
           {{"kind", "joint"},
            {"keep", {0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0}},
            {"weight_bits", {32, 8}},
            {"channel_multiple", 8}}},
          {"strategy", {{"name", "random"}, {"evaluations", evaluations}}},
          {"evaluator",
           {{"name", "bn-recal"},
            {"bn_batches", a.bn_batches},
            {"validation_images", a.validation_images},
            {"threads", 1},
            {"parallel", parallel}}},
          {"target", {{"name", "cpu-onednn"}, {"threads", 1}, {"batch", 1}}},
          {"cost", {{"latency", "lut"}, {"table", lut_path}}}};
}

struct Run {
  search::SearchResult result;
  double seconds = 0;
};

Run run(const nlohmann::json& config_json, const std::string& out_dir) {
  std::filesystem::remove_all(out_dir);
  const auto config = search::SearchConfig::from_json(config_json, "search_overhead");
  search::RunOptions opts;
  opts.out_dir = out_dir;
  opts.progress = false;
  const auto t0 = Clock::now();
  Run r;
  r.result = search::run_search(config, opts);
  r.seconds = seconds_since(t0);
  return r;
}

/// Candidates per second of the strategy's batches (baseline and uniforms run one at a time).
double search_throughput(const search::SearchResult& r, int64_t& count, double& seconds) {
  count = 0;
  seconds = 0;
  for (const auto& e : r.evaluations)
    if (e.kind == "search" && !e.cached) {
      ++count;
      seconds += e.eval_seconds;
    }
  return seconds > 0 ? static_cast<double>(count) / seconds : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench search_overhead: engine time per candidate and 2-worker speed-up"};
  Args a;
  bench::CommonHelp common;
  common.model = "Trained network file";
  common.results = "Folder of the search runs and the latency table";
  common.seed = "Search seed";
  bench::add_common_options(app, a, common);
  app.add_option("--evaluations", a.evaluations, "Random-search evaluations per run")
      ->capture_default_str();
  app.add_option("--validation-images", a.validation_images, "Images scored per candidate")
      ->capture_default_str();
  app.add_option("--bn-batches", a.bn_batches, "BatchNorm recalibration batches")
      ->capture_default_str();
  if (const auto rc = bench::parse_args(app, argc, argv)) return *rc;

  try {
    const auto t_bench = Clock::now();
    const std::string stem = std::filesystem::path(a.model).stem().string();
    const std::string lut_path = a.results + "/lut_" + stem + ".json";

    // Profiles the table (when missing) and warms every cache before anything is timed.
    if (!std::filesystem::exists(lut_path)) std::printf("profiling %s ...\n", lut_path.c_str());
    run(search_config(a, lut_path, 1, 1), a.results + "/warmup");

    const auto one = run(search_config(a, lut_path, 1, a.evaluations), a.results + "/parallel_1");
    const auto two = run(search_config(a, lut_path, 2, a.evaluations), a.results + "/parallel_2");

    const auto& stats = one.result.stats;
    const double n = static_cast<double>(std::max<int64_t>(stats.computed, 1));
    const double share = stats.overhead_share();

    int64_t count_1 = 0, count_2 = 0;
    double batch_s_1 = 0, batch_s_2 = 0;
    const double per_s_1 = search_throughput(one.result, count_1, batch_s_1);
    const double per_s_2 = search_throughput(two.result, count_2, batch_s_2);
    const double speedup = per_s_1 > 0 ? per_s_2 / per_s_1 : 0;

    std::printf(
        "engine overhead: random search, %d evaluations, %s, LUT cost, bn-recal (%lld "
        "images, %lld BN batches)\n",
        a.evaluations, stem.c_str(), static_cast<long long>(a.validation_images),
        static_cast<long long>(a.bn_batches));
    std::printf("%-42s %10s %14s\n", "part", "seconds", "ms/candidate");
    auto row = [&](const char* what, double s) {
      std::printf("%-42s %10.3f %14.3f\n", what, s, 1e3 * s / n);
    };
    row("run_search wall time", one.seconds);
    row("  set-up (load net, data, table)", stats.setup);
    row("  search loop", stats.loop);
    row("    accuracy (evaluator)", stats.accuracy);
    row("    latency (table prediction)", stats.latency);
    row("    engine (the rest of the loop)", stats.engine());
    row("      apply policy", stats.apply);
    row("      count size and FLOPs", stats.count_cost);
    row("      strategy ask/tell", stats.strategy);
    row("      journal (fsynced)", stats.journal);
    row("      keys, caches, progress", stats.other());
    row("  after the loop (front measured, files)", stats.finish);
    std::printf("candidates computed: %.0f   overhead_share: %.4f\n\n", n, share);

    std::printf("parallel accuracy workers (1 LibTorch thread each), strategy's batches\n");
    std::printf("%-10s %12s %12s %14s %12s\n", "parallel", "candidates", "batch_s", "cand/s",
                "wall_s");
    std::printf("%-10d %12lld %12.2f %14.3f %12.2f\n", 1, static_cast<long long>(count_1),
                batch_s_1, per_s_1, one.seconds);
    std::printf("%-10d %12lld %12.2f %14.3f %12.2f\n", 2, static_cast<long long>(count_2),
                batch_s_2, per_s_2, two.seconds);
    std::printf("speedup_2_threads: %.3f\n", speedup);

    nlohmann::json result;
    result["overhead_share"] = share;
    result["speedup_2_threads"] = speedup;
    result["overhead"] = stats.to_json();
    result["overhead"]["search_seconds"] = one.seconds;
    result["overhead"]["front_size"] = one.result.front.size();
    result["parallel"] = {
        {"1",
         {{"candidates", count_1}, {"batch_seconds", batch_s_1}, {"wall_seconds", one.seconds}}},
        {"2",
         {{"candidates", count_2}, {"batch_seconds", batch_s_2}, {"wall_seconds", two.seconds}}}};
    result["context"] = bench::context("search_overhead", 1, a.seed,
                                       {{"model", a.model},
                                        {"evaluations", a.evaluations},
                                        {"validation_images", a.validation_images},
                                        {"bn_batches", a.bn_batches},
                                        {"latency_table", lut_path}});
    result["context"]["search"] = one.result.context;
    result["context"]["seconds"] = seconds_since(t_bench);
    bench::write_json(a.out, result);
    std::printf("\nwritten: %s (%.0f s)\n", a.out.c_str(), seconds_since(t_bench));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench search_overhead: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
