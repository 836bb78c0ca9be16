// bench latency: how far the latency numbers of the CPU targets can be trusted, in one run at a
// fixed thread count.
//   repeatability  5 whole-network measurements per small zoo model and CPU target; the CV of
//                  the 5 medians
//   predictor      a latency lookup table profiled over the reachable layer configurations of
//                  the default search space (cpu-onednn, fp32), calibrated on 6 networks, checked
//                  against measurements of random policies
//   joint          the same for the joint space of keep, weight and activation bits (32/8) and
//                  rank (1, 0.5) with an int8 table (each layer in the precision it runs in),
//                  the shares within 5% and 10% per kind of policy: fp32, mixed, factorized
//   onednn         oneDNN engine over LibTorch time, fp32, per zoo model (small ones and 224x224)
//   int8           8-bit weights and activations on every layer vs fp32 on cpu-onednn
//   bf16           bf16 weights on every layer, precision bf16, vs fp32 on cpu-onednn
//   gflops         the oneDNN engine's GFLOP/s on ResNet-50 against this core's measured fp32 peak
// Prints a table per part and writes {"cv", "cv_median", "predictor", "predictor_within_10pct",
// "joint", "joint_within_10pct", "bf16_speedup", "bf16_precision", "cpu_bf16",
// "onednn_over_libtorch_fp32", "int8_speedup", "int8_precision", "gflops_resnet50",
// "peak_gflops", "gflops_over_peak", "context"}.

#include <immintrin.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <random>
#include <set>

#include "bench/bench_util.h"
#include "core/stats.h"
#include "evaluators/cost.h"
#include "graph/channels.h"
#include "latency_models/lut.h"
#include "models/zoo.h"
#include "policies/compress.h"
#include "search/space.h"
#include "targets/int8.h"
#include "targets/onednn_engine.h"
#include "targets/target.h"

using namespace tightfit;

namespace {

struct Args : bench::CommonArgs {
  Args() { out = "bench/results/latency.json"; }
  int policies = 100;
  std::string sections = "repeat,predictor,joint,ratio,int8,bf16,gflops";
};

const std::vector<std::string> kSmallModels = {"vgg_small", "resnet8", "resnet20",
                                               "mobilenetv2_small"};
const std::vector<std::string> kLargeModels = {"resnet18", "resnet50", "mobilenetv2"};
const std::vector<std::string> kTargets = {"cpu-libtorch", "cpu-onednn"};
constexpr int kRepeats = 5;
constexpr int kCalibrationPoints = 6;
constexpr double kWholeNetworkMs = 100;  // min_time_ms of a whole-network measurement
constexpr double kLayerMs = 50;          // min_time_ms of a lookup-table entry
constexpr int kLargeRepeats = 10;        // min_repeats for the 224x224 models
constexpr int kLargeWarmup = 3;
constexpr double kPeakSeconds = 0.3;

/// Sample standard deviation over mean (the timing protocol's cv is the population one).
double coefficient_of_variation(const std::vector<double>& v) {
  return v.size() < 2 ? 0 : tightfit::sample_stddev(v) / tightfit::mean(v);
}

typedef float v8 __attribute__((vector_size(32)));
constexpr int kAccumulators = 12;  // enough independent FMA chains to hide the FMA latency
constexpr int64_t kPeakChunk = 1 << 20;

// FMA loops for the widest vectors this CPU has: `iterations` x kAccumulators multiply-adds,
// returning a value that depends on all of them so nothing is optimized away. Each is compiled
// for its ISA and only called when __builtin_cpu_supports says the CPU has it.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TIGHTFIT_FMA_LOOP(name, isa, vec, lanes, set1, fmadd, store)                      \
  __attribute__((target(isa))) float name(int64_t iterations) {                           \
    vec acc[kAccumulators];                                                               \
    for (int i = 0; i < kAccumulators; ++i) acc[i] = set1(static_cast<float>(i) * 1e-3f); \
    const vec mul = set1(0.999999f), add = set1(1e-6f);                                   \
    for (int64_t n = 0; n < iterations; ++n)                                              \
      for (int i = 0; i < kAccumulators; ++i) acc[i] = fmadd(acc[i], mul, add);           \
    float sum = 0, lane[lanes];                                                           \
    for (int i = 0; i < kAccumulators; ++i) {                                             \
      store(lane, acc[i]);                                                                \
      for (float v : lane) sum += v;                                                      \
    }                                                                                     \
    return sum;                                                                           \
  }
TIGHTFIT_FMA_LOOP(fma_loop_avx2, "avx2,fma", __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps,
                  _mm256_storeu_ps)
TIGHTFIT_FMA_LOOP(fma_loop_avx512, "avx512f", __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps,
                  _mm512_storeu_ps)
#undef TIGHTFIT_FMA_LOOP
#endif

/// Portable fallback: separate multiply and add (lowered to SSE without AVX).
float fma_loop_generic(int64_t iterations) {
  v8 acc[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) acc[i] = v8{} + static_cast<float>(i) * 1e-3f;
  const v8 mul = v8{} + 0.999999f;
  const v8 add = v8{} + 1e-6f;
  for (int64_t n = 0; n < iterations; ++n)
    for (int i = 0; i < kAccumulators; ++i) acc[i] = acc[i] * mul + add;
  float sum = 0;
  for (int i = 0; i < kAccumulators; ++i)
    for (int j = 0; j < 8; ++j) sum += acc[i][j];
  return sum;
}

/// This core's fp32 peak in GFLOP/s (2 flops per multiply-add), timed for ~kPeakSeconds on the
/// calling thread; `isa` says which loop ran.
double peak_gflops(std::string& isa) {
  int lanes = 8;
  std::function<float(int64_t)> run = fma_loop_generic;
  isa = "generic";
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  if (__builtin_cpu_supports("avx512f")) {
    isa = "avx512f", lanes = 16, run = fma_loop_avx512;
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    isa = "avx2+fma", run = fma_loop_avx2;
  }
#endif
  volatile float sink = run(kPeakChunk / 16);  // warm-up (clocks, page faults)
  const auto t0 = std::chrono::steady_clock::now();
  int64_t iterations = 0;
  double seconds = 0;
  while (seconds < kPeakSeconds) {
    sink = sink + run(kPeakChunk);
    iterations += kPeakChunk;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double flops = 2.0 * lanes * kAccumulators * static_cast<double>(iterations);
  return flops / seconds / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "bench latency: repeatability, lookup-table accuracy, oneDNN vs LibTorch, int8 speed-up "
      "and GFLOP/s of the CPU targets"};
  Args a;
  bench::CommonHelp common;
  common.threads = "Intra-op threads of every measurement";
  common.seed = "Policy sampling and input seed";
  bench::add_common_options(app, a, common);
  app.add_option("--policies", a.policies, "Random policies checked per model (predictor, joint)")
      ->capture_default_str();
  app.add_option(
         "--sections", a.sections,
         "Comma-separated parts to run: repeat, predictor, joint, ratio, int8, bf16, gflops")
      ->capture_default_str();
  if (const auto rc = bench::parse_args(app, argc, argv)) return *rc;
  const auto want = [&](const std::string& section) {
    return ("," + a.sections + ",").find("," + section + ",") != std::string::npos;
  };

  try {
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    std::map<std::string, std::unique_ptr<targets::Target>> targets;
    for (const auto& t : kTargets) targets[t] = targets::make_target(t);

    targets::MeasureOptions small_opts;
    small_opts.threads = a.threads;
    small_opts.min_time_ms = kWholeNetworkMs;
    small_opts.seed = a.seed;
    targets::MeasureOptions large_opts = small_opts;
    large_opts.min_repeats = kLargeRepeats;
    large_opts.warmup_runs = kLargeWarmup;

    nlohmann::json result;
    // A failed measurement is recorded with its reason and reads as null.
    auto measure = [&](const std::string& target, const policies::CompressedNetwork& c,
                       const targets::MeasureOptions& opts, const std::string& what) {
      const auto m = targets.at(target)->measure(c, opts);
      if (!m.ok()) result["errors"][what] = m.error;
      return m;
    };
    auto ms_or_null = [](const targets::Measurement& m) {
      return m.ok() ? nlohmann::json(m.median_ms) : nlohmann::json(nullptr);
    };

    // (a) repeatability
    std::map<std::string, std::map<std::string, double>> small_fp32_ms;  // target -> model -> ms
    if (want("repeat")) {
      std::printf("repeatability: %d whole-network measurements, batch 1, %d thread(s)\n", kRepeats,
                  a.threads);
      std::printf("%-14s %-18s %10s %8s %8s\n", "target", "model", "median_ms", "cv", "suspect");
      std::vector<double> all_cv;
      for (const auto& target : kTargets) {
        for (const auto& model : kSmallModels) {
          const auto net = models::make_model(model, models::default_options(model));
          const auto c = policies::apply(net, policies::Policy{});
          std::vector<double> medians;
          int suspect = 0;
          for (int r = 0; r < kRepeats; ++r) {
            const auto m = measure(target, c, small_opts, "cv." + target + "." + model);
            if (!m.ok()) break;
            medians.push_back(m.median_ms);
            suspect += m.suspect;
          }
          if (medians.size() < 2) {
            result["cv"][target][model] = nullptr;
            std::printf("%-14s %-18s %10s\n", target.c_str(), model.c_str(), "failed");
            continue;
          }
          const double cv = coefficient_of_variation(medians);
          all_cv.push_back(cv);
          small_fp32_ms[target][model] = tightfit::median(medians);
          result["cv"][target][model] = cv;
          std::printf("%-14s %-18s %10.3f %8.4f %5d/%d\n", target.c_str(), model.c_str(),
                      tightfit::median(medians), cv, suspect, kRepeats);
        }
      }
      result["cv_median"] = tightfit::median(all_cv);
      std::printf("cv_median %.4f   (%.0f s)\n\n", tightfit::median(all_cv), elapsed());
    }

    // (b) predictor accuracy
    if (want("predictor")) {
      std::printf(
          "predictor: lookup table (cpu-onednn, fp32), default search space, calibrated on %d "
          "networks\n%-18s %8s %8s %8s %8s %8s %8s\n",
          kCalibrationPoints, "model", "entries", "scale", "offset", "rmspe", "<=5%", "<=10%");
      int within10_all = 0, checked_all = 0;
      for (const std::string model : {"resnet20", "mobilenetv2_small"}) {
        const auto net = models::make_model(model, models::default_options(model));
        const search::SpaceConfig space;
        latency_models::LookupTable table(
            latency_models::LutContext::of("cpu-onednn", small_opts, model, net));
        targets::MeasureOptions layer_opts = small_opts;
        layer_opts.min_time_ms = kLayerMs;
        // The extremes and random policies calibrate; more drawn after them check.
        const search::SearchSpace search_space(policies::decision_points(net), space);
        std::mt19937_64 rng(a.seed);
        const auto calibration = search_space.latency_calibration(rng, kCalibrationPoints - 3);
        auto& onednn = *targets.at("cpu-onednn");
        latency_models::build_table(table, net, search_space.reach(), calibration, onednn,
                                    layer_opts, small_opts, {});
        std::vector<policies::Policy> check;
        for (int k = 0; k < a.policies; ++k)
          check.push_back(search_space.sample_one_precision(rng));
        const auto checked = latency_models::check_table(table, net, check, space.channel_multiple,
                                                         onednn, small_opts);
        auto result_model = checked.to_json();
        result_model["entries"] = table.entries().size();
        result_model["scale"] = table.scale();
        result_model["offset_ms"] = table.offset_ms();
        result["predictor"][model] = result_model;
        const int within10 = static_cast<int>(
            std::lround(checked.within_10pct * std::max<int64_t>(1, checked.policies)));
        const int checked_count = static_cast<int>(checked.policies);
        within10_all += within10;
        checked_all += checked_count;
        std::printf("%-18s %8zu %8.3f %8.3f %7.1f%% %7.0f%% %7.0f%%   (%d policies, %.0f s)\n",
                    model.c_str(), table.entries().size(), table.scale(), table.offset_ms(),
                    100 * checked.rmspe, 100 * checked.within_5pct, 100 * checked.within_10pct,
                    checked_count, elapsed());
      }
      result["predictor_within_10pct"] =
          static_cast<double>(within10_all) / std::max(1, checked_all);
      std::printf("predictor_within_10pct %.3f\n\n",
                  static_cast<double>(within10_all) / std::max(1, checked_all));
    }

    // (b2) the joint space: keep x weight bits (32/8) x activation bits (32/8) x rank, an int8
    // table (layers in the precision they run in, precision-change steps), checked on random
    // policies of the whole space and reported per kind of policy.
    if (want("joint")) {
      std::printf(
          "joint space: lookup table (cpu-onednn, int8 precision: each layer as it runs), keep x "
          "weight bits {32, 8} x act bits {32, 8} x rank {1, 0.5}, calibrated on %d networks\n"
          "%-18s %-11s %8s %8s %8s %8s\n",
          kCalibrationPoints, "model", "policies", "count", "rmspe", "<=5%", "<=10%");
      targets::MeasureOptions int8_opts = small_opts;
      int8_opts.precision = "int8";
      int within10_all = 0, checked_all = 0;
      for (const std::string model : {"resnet20", "mobilenetv2_small"}) {
        const auto net = models::make_model(model, models::default_options(model));
        search::SpaceConfig space;
        space.weight_bits = {32, 8};
        space.act_bits = {32, 8};
        space.rank = {1.0, 0.5};
        const search::SearchSpace search_space(policies::decision_points(net), space);
        latency_models::LookupTable table(
            latency_models::LutContext::of("cpu-onednn", int8_opts, model, net));
        targets::MeasureOptions layer_opts = int8_opts;
        layer_opts.min_time_ms = kLayerMs;
        std::mt19937_64 rng(a.seed);
        const auto calibration = search_space.latency_calibration(rng, kCalibrationPoints - 3);
        auto& onednn = *targets.at("cpu-onednn");
        latency_models::build_table(table, net, search_space.reach(), calibration, onednn,
                                    layer_opts, int8_opts, {});
        // The checked policies in three kinds, drawn in turn from sub-spaces: "mixed" (keep x
        // bits, no factorization), "factorized" (keep x rank, fp32) and "joint" (everything).
        auto mixed_space = space, factorized_space = space;
        mixed_space.rank = {1.0};
        factorized_space.weight_bits = {32};
        factorized_space.act_bits = {32};
        const search::SearchSpace mixed(policies::decision_points(net), mixed_space);
        const search::SearchSpace factorized(policies::decision_points(net), factorized_space);
        const std::vector<std::pair<std::string, const search::SearchSpace*>> kinds = {
            {"mixed", &mixed}, {"factorized", &factorized}, {"joint", &search_space}};
        std::vector<policies::Policy> check;
        for (int k = 0; k < a.policies; ++k) check.push_back(kinds[k % 3].second->sample(rng));
        const auto checked = latency_models::check_table(table, net, check, space.channel_multiple,
                                                         onednn, int8_opts);
        std::map<std::string, std::vector<double>> by_kind;
        for (size_t k = 0; k < check.size(); ++k) {
          by_kind[kinds[k % 3].first].push_back(checked.errors[k]);
          by_kind["all"].push_back(checked.errors[k]);
        }
        // What int8 buys layer by layer: fp32 over int8 time of each configuration the table
        // holds in both precisions, dense and depthwise apart.
        std::vector<double> dense_speedup, depthwise_speedup;
        for (const auto& [key, ms] : table.entries()) {
          const auto cut = key.rfind(",int8");
          if (cut == std::string::npos || cut + 5 != key.size() || !(ms > 0)) continue;
          const auto fp32 = table.entries().find(key.substr(0, cut));
          if (fp32 == table.entries().end()) continue;
          const auto groups = key.find(",g");  // LayerKey::str(): ...,g<groups>,...
          const bool depthwise =
              groups != std::string::npos && std::stoll(key.substr(groups + 2)) > 1;
          (depthwise ? depthwise_speedup : dense_speedup).push_back(fp32->second / ms);
        }
        nlohmann::json result_model = {{"entries", table.entries().size()},
                                       {"scale", table.scale()},
                                       {"offset_ms", table.offset_ms()}};
        const auto median_or_null = [](const std::vector<double>& v) {
          return v.empty() ? nlohmann::json() : nlohmann::json(tightfit::median(v));
        };
        result_model["int8_speedup_dense_median"] = median_or_null(dense_speedup);
        result_model["int8_speedup_depthwise_median"] = median_or_null(depthwise_speedup);
        const auto ratio = [](const std::vector<double>& v) {
          return v.empty() ? std::string("-") : std::to_string(tightfit::median(v)).substr(0, 4);
        };
        std::printf(
            "%-18s int8 layer speed-up in the table (fp32 / int8 time, median): dense %s, "
            "depthwise %s\n",
            model.c_str(), ratio(dense_speedup).c_str(), ratio(depthwise_speedup).c_str());
        for (const auto& [kind, errors] : by_kind) {
          const auto summary = latency_models::summarize_errors(errors);
          result_model[kind] = summary.to_json();
          std::printf("%-18s %-11s %8lld %7.1f%% %7.0f%% %7.0f%%\n", model.c_str(), kind.c_str(),
                      static_cast<long long>(summary.policies), 100 * summary.rmspe,
                      100 * summary.within_5pct, 100 * summary.within_10pct);
        }
        std::printf("%-18s %zu entries, scale %.3f, offset %.3f ms   (%.0f s)\n", model.c_str(),
                    table.entries().size(), table.scale(), table.offset_ms(), elapsed());
        result["joint"][model] = result_model;
        within10_all += static_cast<int>(
            std::lround(checked.within_10pct * static_cast<double>(checked.policies)));
        checked_all += static_cast<int>(checked.policies);
      }
      result["joint_within_10pct"] = static_cast<double>(within10_all) / std::max(1, checked_all);
      std::printf("joint_within_10pct %.3f\n\n",
                  static_cast<double>(within10_all) / std::max(1, checked_all));
    }

    // (c) oneDNN over LibTorch, fp32 (small models reuse the repeatability medians)
    std::printf("oneDNN vs LibTorch, fp32, batch 1\n%-18s %12s %12s %8s\n", "model", "libtorch_ms",
                "onednn_ms", "ratio");
    std::map<std::string, targets::Measurement> onednn_fp32;  // 224x224 models
    std::map<std::string, graph::Network> large_nets;
    auto large_net = [&](const std::string& model) -> const graph::Network& {
      if (!large_nets.count(model))
        large_nets.emplace(model, models::make_model(model, models::default_options(model)));
      return large_nets.at(model);
    };
    auto large_fp32 = [&](const std::string& model) -> const targets::Measurement& {
      if (!onednn_fp32.count(model))
        onednn_fp32[model] = measure("cpu-onednn", policies::apply(large_net(model), {}),
                                     large_opts, "fp32.cpu-onednn." + model);
      return onednn_fp32.at(model);
    };
    auto print_ratio = [&](const std::string& model, double lt, double dn) {
      const bool ok = lt > 0 && dn > 0;
      result["onednn_over_libtorch_fp32"][model] = ok ? nlohmann::json(dn / lt) : nullptr;
      std::printf("%-18s %12.3f %12.3f %8.3f\n", model.c_str(), lt, dn, ok ? dn / lt : 0.0);
    };
    if (want("ratio")) {
      for (const auto& model : kSmallModels)
        if (small_fp32_ms.count("cpu-onednn"))
          print_ratio(model, small_fp32_ms["cpu-libtorch"][model],
                      small_fp32_ms["cpu-onednn"][model]);
      for (const auto& model : kLargeModels) {
        const auto c = policies::apply(large_net(model), policies::Policy{});
        const auto lt = measure("cpu-libtorch", c, large_opts, "fp32.cpu-libtorch." + model);
        const auto& dn = large_fp32(model);
        print_ratio(model, lt.ok() ? lt.median_ms : 0, dn.ok() ? dn.median_ms : 0);
      }
      std::printf("(%.0f s)\n\n", elapsed());
    }

    // (d) int8 vs fp32 on cpu-onednn
    // One row of a lower precision against fp32 (224x224 models): the speed-up, what ran, both
    // times; "<kind>_speedup", "<kind>_precision", "<kind>_ms" and "fp32_ms" in the JSON.
    const auto speedup_row = [&](const std::string& kind, const std::string& model,
                                 const targets::Measurement& low) {
      const auto& f = large_fp32(model);
      const bool ok = low.ok() && f.ok();
      result[kind + "_speedup"][model] = ok ? nlohmann::json(f.median_ms / low.median_ms) : nullptr;
      result[kind + "_precision"][model] = low.precision;
      result[kind + "_ms"][model] = ms_or_null(low);
      result["fp32_ms"][model] = ms_or_null(f);
      std::printf("%-14s %10.3f %10.3f %8.3f %10s%s\n", model.c_str(), f.median_ms, low.median_ms,
                  ok ? f.median_ms / low.median_ms : 0.0, low.precision.c_str(),
                  low.ok() ? "" : ("  failed: " + low.error).c_str());
    };
    if (want("int8")) {
      std::printf("int8 vs fp32 on cpu-onednn (8-bit weights and activations on every layer)\n");
      std::printf("%-14s %10s %10s %8s %10s\n", "model", "fp32_ms", "int8_ms", "speedup", "ran");
      policies::Calibration calibration;
      torch::manual_seed(a.seed);
      constexpr int kCalibrationBatches = 2;
      constexpr int64_t kCalibrationImages = 4;
      for (int b = 0; b < kCalibrationBatches; ++b) {
        calibration.images.push_back(torch::randn({kCalibrationImages, 3, 224, 224}));
        calibration.labels.push_back(torch::zeros({kCalibrationImages}, torch::kLong));
      }
      for (const std::string model : {"resnet50", "mobilenetv2"}) {
        const auto& net = large_net(model);
        policies::Policy p;
        // Without VNNI, 8-bit weights run in int8 only on 7-bit activation codes.
        p.quantization.reduce_range = !targets::OneDnnEngine::exact_full_range_int8();
        for (const auto& l : policies::decision_points(net).layers) {
          p.weight_bits[l.name] = 8;
          p.act_bits[l.name] = 8;
        }
        policies::ApplyOptions apply_opts;
        apply_opts.calibration = &calibration;
        apply_opts.seed = a.seed;
        targets::MeasureOptions int8_opts = large_opts;
        int8_opts.precision = "int8";
        targets::Measurement q;
        try {
          const auto c = policies::apply(net, p, apply_opts);
          q = measure("cpu-onednn", c, int8_opts, "int8." + model);
        } catch (const std::exception& e) {
          q.error = e.what();
          result["errors"]["int8." + model] = q.error;
        }
        speedup_row("int8", model, q);
      }
      std::printf("(%.0f s)\n\n", elapsed());
    }

    // (d2) bf16 over fp32: 16-bit bf16 weights on every layer, precision bf16 (run in bf16
    // where the CPU has AVX512-BF16, in fp32 elsewhere; "ran" says which)
    if (want("bf16")) {
      std::printf("bf16 vs fp32 on cpu-onednn (bf16 weights on every layer; CPU bf16: %s)\n",
                  targets::cpu_has_bf16() ? "yes" : "no");
      std::printf("%-14s %10s %10s %8s %10s\n", "model", "fp32_ms", "bf16_ms", "speedup", "ran");
      result["cpu_bf16"] = targets::cpu_has_bf16();
      for (const std::string model : {"resnet50", "mobilenetv2"}) {
        const auto& net = large_net(model);
        policies::Policy p;
        p.quantization.float16 = "bf16";
        for (const auto& l : policies::decision_points(net).layers) p.weight_bits[l.name] = 16;
        targets::MeasureOptions bf16_opts = large_opts;
        bf16_opts.precision = "bf16";
        speedup_row("bf16", model,
                    measure("cpu-onednn", policies::apply(net, p), bf16_opts, "bf16." + model));
      }
      std::printf("(%.0f s)\n\n", elapsed());
    }

    // (e) GFLOP/s of the engine on ResNet-50 against this core's peak
    if (want("gflops")) {
      const auto& r50 = large_fp32("resnet50");
      const double macs = static_cast<double>(evaluators::count_macs(large_net("resnet50")));
      const double gflops = r50.ok() ? 2 * macs / (r50.median_ms / 1e3) / 1e9 : 0;
      std::string isa;
      const double peak = peak_gflops(isa);
      result["gflops_resnet50"] = r50.ok() ? nlohmann::json(gflops) : nullptr;
      result["peak_gflops"] = peak;
      result["peak_isa"] = isa;
      result["gflops_over_peak"] = r50.ok() ? nlohmann::json(gflops / peak) : nullptr;
      std::printf("GFLOP/s, fp32, one thread peak\n%-22s %10s %10s %8s\n", "", "GFLOP/s", "peak",
                  "ratio");
      std::printf("%-22s %10.1f %10.1f %8.3f   (peak loop: %s, %d thread(s) for the network)\n",
                  "resnet50 cpu-onednn", gflops, peak, gflops / peak, isa.c_str(), a.threads);
    }

    result["context"] = bench::context("latency", a.threads, a.seed,
                                       {{"policies", a.policies},
                                        {"whole_network_min_time_ms", kWholeNetworkMs},
                                        {"layer_min_time_ms", kLayerMs},
                                        {"large_min_repeats", kLargeRepeats}});
    result["context"]["seconds"] = elapsed();
    bench::write_json(a.out, result);
    std::printf("\nwritten: %s (%.0f s)\n", a.out.c_str(), elapsed());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench latency: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
