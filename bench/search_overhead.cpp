// bench search_overhead: what the search engine itself costs per candidate, and what a second
// accuracy worker buys.
//   overhead_share     One random search (LUT latency cost) is timed as a whole; then, outside the
//                      controller, every candidate it computed is applied, its latency predicted
//                      by the same table and its accuracy scored by the same evaluator, each
//                      timed. Engine time = search wall time - set-up (network, data, evaluator,
//                      table; timed here) - end-to-end measurement of the front (timed here) -
//                      (prediction + accuracy) of every candidate. Its share is engine time over
//                      prediction + accuracy time. Apply is engine time; it is reported on its
//                      own too, and so is counting size and FLOPs. Nothing in the controller is
//                      instrumented.
//   speedup_2_threads  The same search with evaluator "parallel": 2 over "parallel": 1 (one
//                      LibTorch thread per evaluation in both): candidates per second of the
//                      strategy's batches (the evaluations' eval_seconds, summed).
// Prints a table and writes {"overhead_share", "speedup_2_threads", "overhead", "parallel",
// "context"}.

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "bench/bench_util.h"
#include "evaluators/cost.h"
#include "evaluators/evaluator.h"
#include "graph/serialize.h"
#include "latency_models/lut.h"
#include "search/config.h"
#include "search/controller.h"
#include "targets/target.h"

using namespace tightfit;

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string model = "runs/models/vgg_small.tfn";
  std::string out = "bench/results/search_overhead.json";
  std::string results = "bench/results/runs/search_overhead";
  int evaluations = 40;
  int64_t validation_images = 1000;
  int64_t bn_batches = 5;
  uint64_t seed = 1;
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

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

/// Every candidate the run computed (not cached), baseline first.
std::vector<const search::Evaluation*> computed(const search::SearchResult& r) {
  std::vector<const search::Evaluation*> out = {&r.baseline};
  for (const auto& e : r.evaluations)
    if (!e.cached) out.push_back(&e);
  return out;
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
  app.add_option("--model", a.model, "Trained network file")->capture_default_str();
  app.add_option("--out", a.out, "JSON output file")->capture_default_str();
  app.add_option("--results", a.results, "Folder of the search runs and the latency table")
      ->capture_default_str();
  app.add_option("--evaluations", a.evaluations, "Random-search evaluations per run")
      ->capture_default_str();
  app.add_option("--validation-images", a.validation_images, "Images scored per candidate")
      ->capture_default_str();
  app.add_option("--bn-batches", a.bn_batches, "BatchNorm recalibration batches")
      ->capture_default_str();
  app.add_option("--seed", a.seed, "Search seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    const auto t_bench = Clock::now();
    const std::string stem = std::filesystem::path(a.model).stem().string();
    const std::string lut_path = a.results + "/lut_" + stem + ".json";

    // Profiles the table (when missing) and warms every cache before anything is timed.
    if (!std::filesystem::exists(lut_path)) std::printf("profiling %s ...\n", lut_path.c_str());
    run(search_config(a, lut_path, 1, 1), a.results + "/warmup");

    const auto one = run(search_config(a, lut_path, 1, a.evaluations), a.results + "/parallel_1");
    const auto two = run(search_config(a, lut_path, 2, a.evaluations), a.results + "/parallel_2");

    // Set-up of a run, as the controller does it.
    const auto config =
        search::SearchConfig::from_json(search_config(a, lut_path, 1, a.evaluations), "bench");
    auto t0 = Clock::now();
    const auto net = graph::load_network(a.model);
    datasets::SplitOptions split;
    split.validation_count = config.validation_count;
    const auto data = datasets::load_fashion_mnist(config.data_dir, split);
    auto evaluator = evaluators::make_evaluator(config.evaluator, config.evaluator_config, data);
    auto target = targets::make_target(config.target);
    latency_models::LutContext lut_context;
    auto lut = latency_models::LookupTable::load(lut_path, lut_context);
    const double setup_s = seconds_since(t0);

    // The front's end-to-end measurement, as the controller does it.
    policies::ApplyOptions apply_opts;
    apply_opts.channel_multiple = config.space.channel_multiple;
    t0 = Clock::now();
    for (size_t i : one.result.front) {
      const auto c = policies::apply(net, one.result.evaluations[i].policy, apply_opts);
      target->measure(c, config.measure);
    }
    const double front_s = seconds_since(t0);

    // Each computed candidate again: apply, cost counting, prediction, accuracy, each timed; the
    // evaluator runs in a one-worker TBB arena, as the controller calls it.
    tbb::task_arena arena(1);
    double apply_s = 0, count_s = 0, predict_s = 0, accuracy_s = 0;
    const auto candidates = computed(one.result);
    for (const auto* e : candidates) {
      t0 = Clock::now();
      const auto c = policies::apply(net, e->policy, apply_opts);
      apply_s += seconds_since(t0);
      t0 = Clock::now();
      evaluators::count_cost(c);
      count_s += seconds_since(t0);
      t0 = Clock::now();
      lut.predict({&c});
      predict_s += seconds_since(t0);
      t0 = Clock::now();
      arena.execute([&] { tbb::parallel_for(0, 1, [&](int) { evaluator->evaluate(c, net); }); });
      accuracy_s += seconds_since(t0);
    }
    const double n = static_cast<double>(candidates.size());
    const double evaluation_s = predict_s + accuracy_s;
    const double engine_s = one.seconds - setup_s - front_s - evaluation_s;
    const double share = engine_s / evaluation_s;

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
    std::printf("%-34s %10s %14s\n", "part", "seconds", "ms/candidate");
    auto row = [&](const char* what, double s) {
      std::printf("%-34s %10.3f %14.3f\n", what, s, 1e3 * s / n);
    };
    row("run_search wall time", one.seconds);
    row("  set-up (load net, data, table)", setup_s);
    row("  front measured end to end", front_s);
    row("  accuracy (evaluator)", accuracy_s);
    row("  latency (table prediction)", predict_s);
    row("  engine (the rest)", engine_s);
    row("    of which apply", apply_s);
    row("    of which cost counting", count_s);
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
    result["overhead"] = {{"candidates", candidates.size()},
                          {"search_seconds", one.seconds},
                          {"setup_seconds", setup_s},
                          {"front_measure_seconds", front_s},
                          {"front_size", one.result.front.size()},
                          {"accuracy_seconds", accuracy_s},
                          {"predict_seconds", predict_s},
                          {"engine_seconds", engine_s},
                          {"apply_seconds", apply_s},
                          {"count_cost_seconds", count_s},
                          {"engine_ms_per_candidate", 1e3 * engine_s / n},
                          {"evaluation_ms_per_candidate", 1e3 * evaluation_s / n}};
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
