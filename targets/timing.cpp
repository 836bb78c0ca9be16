#include "targets/timing.h"

#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <oneapi/dnnl/dnnl.hpp>
#include <thread>

#include "core/json.h"
#include "core/machine.h"
#include "core/stats.h"
#include "graph/network.h"
#include "targets/affinity.h"

namespace tightfit::targets {

std::mutex& measurement_lock() {
  static std::mutex m;
  return m;
}

namespace {

using Clock = std::chrono::steady_clock;

double time_once(const std::function<void()>& run_once) {
  const auto t0 = Clock::now();
  run_once();
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

/// Warm-up: the fixed minimum, then windows of runs until the median of one window is within 5%
/// of the previous one's (caches, primitive caches and the OpenMP pool have settled), at most
/// kMaxWarmupWindows windows.
void warm_up(const std::function<void()>& run_once, int warmup_runs) {
  constexpr int kWindow = 5;
  constexpr int kMaxWarmupWindows = 10;
  constexpr double kStableRatio = 0.05;
  for (int i = 0; i < warmup_runs; ++i) run_once();
  if (warmup_runs == 0) return;
  double previous = -1;
  for (int w = 0; w < kMaxWarmupWindows; ++w) {
    std::vector<double> window;
    for (int i = 0; i < kWindow; ++i) window.push_back(time_once(run_once));
    const double window_median = median(window);
    if (previous > 0 && std::fabs(window_median - previous) <= kStableRatio * previous) return;
    previous = window_median;
  }
}

}  // namespace

void time_runs(const std::function<void()>& run_once, const MeasureOptions& opts, Measurement& m) {
  const ThreadPinning pinning(opts.threads);
  m.affinity = pinning.description();
  warm_up(run_once, opts.warmup_runs);
  m.attempts = 0;
  double best_spread = -1;
  for (int attempt = 0; attempt < std::max(1, opts.max_attempts); ++attempt) {
    std::vector<double> samples;
    double total_ms = 0;
    while (static_cast<int>(samples.size()) < opts.max_repeats &&
           (static_cast<int>(samples.size()) < opts.min_repeats || total_ms < opts.min_time_ms)) {
      samples.push_back(time_once(run_once));
      total_ms += samples.back();
    }
    ++m.attempts;
    // The median as the 0.5 quantile: the same interpolation as the quartiles of the IQR.
    const double median_ms = quantile(samples, 0.5);
    const double iqr_ms = interquartile_range(samples);
    const double spread = median_ms > 0 ? iqr_ms / median_ms : 0.0;
    if (best_spread < 0 || spread < best_spread) {
      best_spread = spread;
      const double mean_ms = mean(samples);
      m.samples = static_cast<int>(samples.size());
      m.median_ms = median_ms;
      m.iqr_ms = iqr_ms;
      m.min_ms = *std::min_element(samples.begin(), samples.end());
      m.cv = mean_ms > 0 ? std::sqrt(variance(samples)) / mean_ms : 0.0;  // population
    }
    if (spread < kSuspectSpread) break;
  }
  m.suspect = best_spread >= kSuspectSpread;
}

MeasureOptions MeasureOptions::from_json(const nlohmann::json& j, const std::string& where) {
  const auto o = read_section<MeasureOptions>(j, where);
  o.check(where + ".");
  return o;
}

void MeasureOptions::check(const std::string& prefix) const {
  check_threads(threads, prefix + "threads");
  if (batch < 1)
    throw ConfigError(prefix + "batch is " + std::to_string(batch) + "; it must be >= 1");
  if (min_repeats < 1 || warmup_runs < 0 || max_repeats < min_repeats || max_attempts < 1 ||
      !(min_time_ms >= 0 && std::isfinite(min_time_ms)))
    throw ConfigError(prefix +
                      "min_repeats and max_attempts must be >= 1, warmup_runs and min_time_ms "
                      ">= 0, max_repeats >= min_repeats");
}

void check_batch_fits(const graph::Network& net, int64_t batch, const std::string& what) {
  if (batch < 1) throw ConfigError(what + " is " + std::to_string(batch) + "; it must be >= 1");
  // Every node's output held at once, in fp32: a bound on what one batch needs, whatever the
  // target frees early.
  long double elements = 0;
  for (const auto& shape : graph::infer_shapes(net)) {
    long double n = 1;
    for (int64_t d : shape) n *= static_cast<long double>(d);
    elements += n;
  }
  const long double bytes = elements * 4 * static_cast<long double>(batch);
  const long double cap = static_cast<long double>(std::numeric_limits<int64_t>::max());
  check_memory(static_cast<int64_t>(std::min(bytes, cap)),
               what + " " + std::to_string(batch) + " of " + graph::shape_str(net.input_shape()),
               "use a smaller " + what);
}

nlohmann::json MeasureOptions::to_json() const { return write_section(*this); }

nlohmann::json Measurement::to_json() const {
  nlohmann::json j = {
      {"target", target},       {"precision", precision}, {"threads", threads}, {"batch", batch},
      {"median_ms", median_ms}, {"iqr_ms", iqr_ms},       {"min_ms", min_ms},   {"cv", cv},
      {"samples", samples},     {"attempts", attempts},   {"suspect", suspect}};
  if (!affinity.empty()) j["affinity"] = affinity;
  if (modelled) j["modelled"] = true;
  if (!ok()) j["error"] = error;
  return j;
}

nlohmann::json machine_context() {
  std::string cpu = "unknown", flags;
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line) && (cpu == "unknown" || flags.empty());) {
    if (line.rfind("model name", 0) == 0 && cpu == "unknown") cpu = line.substr(line.find(':') + 2);
    if (line.rfind("flags", 0) == 0 && flags.empty()) flags = line.substr(line.find(':') + 1) + " ";
  }
  // The instruction sets that change what a target runs and how fast (int8 needs VNNI to beat
  // fp32; bf16 and AMX change what oneDNN picks).
  nlohmann::json isa = nlohmann::json::array();
  for (const char* f : {"avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
                        "avx512_bf16", "amx_bf16", "amx_int8"})
    if (flags.find(" " + std::string(f) + " ") != std::string::npos) isa.push_back(f);
  return {{"cpu", cpu},
          {"isa", isa},
          {"hardware_threads", std::thread::hardware_concurrency()},
          {"libtorch", TORCH_VERSION},
          {"onednn", std::to_string(dnnl::version()->major) + "." +
                         std::to_string(dnnl::version()->minor) + "." +
                         std::to_string(dnnl::version()->patch)},
          {"nlohmann_json", std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." +
                                std::to_string(NLOHMANN_JSON_VERSION_MINOR) + "." +
                                std::to_string(NLOHMANN_JSON_VERSION_PATCH)}};
}

}  // namespace tightfit::targets
