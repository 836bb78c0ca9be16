#pragma once
// Latency vs channel count (NetAdapt's observation that latency is not linear in channels):
// one layer is timed on a target at a run of output channel counts, and the curves of a few
// representative layers say which channel multiple the target prefers. On an AVX2 CPU oneDNN
// pads fp32 convolution outputs to a multiple of 8, so time is a step function of
// ceil(channels / 8): pruning 64 -> 57 channels saves nothing, 56 does. The search space rounds
// kept channels to that multiple (`"channel_multiple": "auto"` in `tightfit profile`).
//
// The preferred multiple is the largest m in {1, 2, 4, 8, 16, 32, 64} such that rounding a
// channel count up to a multiple of m costs (almost) nothing:
//   for a measured count c that is not a multiple of m and whose round-up r = ceil(c / m) * m
//   was measured on the same curve, the round-up is free when
//       t(r) <= t(c) * (1 + tolerance) + noise_iqrs * (iqr(c) + iqr(r)) / 2
//   (t the median time, iqr the interquartile range of its timed runs; each count keeps the
//   fastest of a few interleaved rounds, which takes most of a shared machine's disturbances
//   out before the rule sees them), and m is accepted when at most max_fail_share of those
//   points, pooled over all curves, are not free and at least min_tested points were checked.
// Defaults (MultipleRule): 3%, half an IQR, 15% of the points, 4 points.
// The multiples are tried in increasing order and the first one refused ends the search: a
// larger multiple makes every round-up longer, so on a monotone curve it can only cost more,
// and a noisy point cannot make 64 pass where 16 failed. No multiple checked gives 1.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "graph/network.h"
#include "targets/target.h"

namespace tightfit::latency_models {

struct LayerKey;  // lut.h

/// One layer timed at one output channel count.
struct CurvePoint {
  int64_t channels = 0;
  double median_ms = 0;  ///< lower is better
  double iqr_ms = 0;     ///< interquartile range of the timed runs
};

/// Latency of one layer vs its output channel count (depthwise layers: all three of input,
/// output and groups move together).
struct ChannelCurve {
  std::string layer;               ///< LayerKey::str() of the layer at its original channels
  std::vector<CurvePoint> points;  ///< ascending channels
};

/// Multiples preferred_multiple() chooses from.
inline constexpr int64_t kCandidateMultiples[] = {1, 2, 4, 8, 16, 32, 64};

/// Which channel counts a curve measures.
struct CurveOptions {
  /// Channel counts timed per layer, at most. They are consecutive (so every round-up within
  /// the run lands on a measured count): from lo = max(1, min(C/2, C - max_points + 1)) to
  /// min(C, lo + max_points - 1), C the layer's output channels. That is all of 1..C for small
  /// layers (1..16 for C = 16, where 8..16 alone could not tell 8 from 16), 32..64 for C = 64,
  /// 64..96 for C = 128 (the middle of the range a search prunes to).
  int64_t max_points = 33;
  /// Interleaved passes over the counts, sharing MeasureOptions::min_time_ms; each count keeps
  /// its fastest pass (see measure_channel_curve).
  int64_t rounds = 3;
};

/// The rule of preferred_multiple() (see the top of this file).
struct MultipleRule {
  double tolerance = 0.03;       ///< a round-up may cost this share of t(c) ...
  double noise_iqrs = 0.5;       ///< ... plus this many IQRs (mean of the two points)
  double max_fail_share = 0.15;  ///< share of checked points allowed to break the bound
  int64_t min_tested = 4;        ///< points a multiple needs to be checked on to be accepted
};

/// The channel counts a curve for a layer of `channels` output channels measures, ascending.
std::vector<int64_t> curve_channels(int64_t channels, const CurveOptions& opts = {});

/// The `count` layers of `net` to draw curves for: distinct conv/linear keys of ungrouped or
/// depthwise layers with at least 2 output channels, the largest by multiply-accumulates first
/// (ties: more output channels, then node order); among the layers with at least a quarter of
/// the largest one's work, one per output channel count comes before any second one of a count.
/// Fewer when the network has fewer.
std::vector<LayerKey> curve_layers(const graph::Network& net, size_t count);

/// Times `key` on `target` at every count of curve_channels(key.out_channels), as profile()
/// times table entries (the layer's own kernel, at measure.precision), in opts.rounds
/// interleaved passes that keep each count's fastest median (with its IQR); a failed
/// measurement is an InputError naming the layer and channel count.
ChannelCurve measure_channel_curve(const LayerKey& key, targets::Target& target,
                                   const targets::MeasureOptions& measure,
                                   const CurveOptions& opts = {});

/// Rounds `channels` up to a multiple of `multiple`.
int64_t round_up(int64_t channels, int64_t multiple);

/// The largest multiple rounding up to which is (almost) free on `curves` (1 when none is).
int64_t preferred_multiple(const std::vector<ChannelCurve>& curves, const MultipleRule& rule = {});

/// {layer: [[channels, median_ms, iqr_ms], ...]}, the latency table's "channel_curves".
nlohmann::json curves_to_json(const std::vector<ChannelCurve>& curves);
/// Inverse of curves_to_json; [channels, median_ms] pairs (no IQR) are accepted too. A malformed
/// value is an InputError naming `where`.
std::vector<ChannelCurve> curves_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace tightfit::latency_models
