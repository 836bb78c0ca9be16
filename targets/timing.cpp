#include "targets/timing.h"

#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <oneapi/dnnl/dnnl.hpp>
#include <thread>

#include "core/json.h"
#include "targets/affinity.h"

namespace tightfit::targets {

std::mutex& measurement_lock() {
  static std::mutex m;
  return m;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
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
    const double median = quantile(window, 0.5);
    if (previous > 0 && std::fabs(median - previous) <= kStableRatio * previous) return;
    previous = median;
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
    const double median = quantile(samples, 0.5);
    const double iqr = quantile(samples, 0.75) - quantile(samples, 0.25);
    const double spread = median > 0 ? iqr / median : 0.0;
    if (best_spread < 0 || spread < best_spread) {
      best_spread = spread;
      const double mean = total_ms / static_cast<double>(samples.size());
      double var = 0;
      for (double s : samples) var += (s - mean) * (s - mean);
      var /= static_cast<double>(samples.size());
      m.samples = static_cast<int>(samples.size());
      m.median_ms = median;
      m.iqr_ms = iqr;
      m.min_ms = *std::min_element(samples.begin(), samples.end());
      m.cv = mean > 0 ? std::sqrt(var) / mean : 0.0;
    }
    if (spread < kSuspectSpread) break;
  }
  m.suspect = best_spread >= kSuspectSpread;
}

MeasureOptions MeasureOptions::from_json(const nlohmann::json& j, const std::string& where) {
  MeasureOptions o;
  if (j.is_null()) return o;
  check_keys(j,
             {"precision", "threads", "batch", "warmup_runs", "min_repeats", "min_time_ms",
              "max_repeats", "max_attempts", "seed"},
             where);
  o.precision = get_or(j, "precision", o.precision, where);
  o.threads = get_or(j, "threads", o.threads, where);
  o.batch = get_or(j, "batch", o.batch, where);
  o.warmup_runs = get_or(j, "warmup_runs", o.warmup_runs, where);
  o.min_repeats = get_or(j, "min_repeats", o.min_repeats, where);
  o.min_time_ms = get_or(j, "min_time_ms", o.min_time_ms, where);
  o.max_repeats = get_or(j, "max_repeats", o.max_repeats, where);
  o.max_attempts = get_or(j, "max_attempts", o.max_attempts, where);
  o.seed = get_or(j, "seed", o.seed, where);
  if (o.threads < 1 || o.batch < 1 || o.min_repeats < 1 || o.warmup_runs < 0 ||
      o.max_repeats < o.min_repeats || o.max_attempts < 1)
    throw ConfigError(where + ": threads, batch, min_repeats must be >= 1, warmup_runs >= 0, " +
                      "max_repeats >= min_repeats");
  return o;
}

nlohmann::json MeasureOptions::to_json() const {
  return {
      {"precision", precision},     {"threads", threads},           {"batch", batch},
      {"warmup_runs", warmup_runs}, {"min_repeats", min_repeats},   {"min_time_ms", min_time_ms},
      {"max_repeats", max_repeats}, {"max_attempts", max_attempts}, {"seed", seed}};
}

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
  std::string cpu = "unknown";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  return {{"cpu", cpu},
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
