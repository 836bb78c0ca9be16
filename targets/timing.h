#pragma once
// The measurement protocol shared by all targets: warm-up, then timed runs until both a minimum
// count and a minimum total time are reached; median and interquartile range of the samples.
// One process-wide lock keeps engine work off the device while it is being timed.

#include <functional>
#include <mutex>
#include <vector>

#include "core/stats.h"
#include "targets/target.h"

namespace tightfit::targets {

/// Held for the whole of a measurement (invariant 3).
std::mutex& measurement_lock();

/// Runs `run_once` per the protocol in `opts` and fills the timing fields of `m`, with the
/// `opts.threads` OpenMP threads pinned to CPUs throughout (ThreadPinning): warm-up (at
/// least opts.warmup_runs, then until two consecutive windows of runs agree within 5%), timed
/// runs until both opts.min_repeats and opts.min_time_ms are reached, and up to
/// opts.max_attempts measurements while IQR / median >= kSuspectSpread (the steadiest is kept).
void time_runs(const std::function<void()>& run_once, const MeasureOptions& opts, Measurement& m);

/// The quantile of the measurement protocol's median and interquartile range (core/stats.h:
/// linear interpolation between order statistics), under its older name.
using tightfit::quantile;

}  // namespace tightfit::targets
