// Helpers the schemes share.
//
//   ranges  percentile and the clipping range of one group of values by the calibration method:
//           minmax, percentile, or mse (a search over shrunk minmax ranges). Weights of the
//           uniform schemes and activations (quantize.cpp) use the same ranges and grids.
//   grids   make_grid: scale, zero point and integer bounds of a symmetric, unsigned or affine
//           grid. Scales are stored as float32, so they are rounded before any value is
//           computed from them; a zero range gets a tiny positive scale so that dividing by it
//           never gives NaN.
//   levels  nearest-level lookup over sorted levels (kmeans codebooks, pow2 magnitudes).

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/json.h"
#include "policies/quant_schemes/scheme.h"

namespace tightfit::policies::quant_schemes {
namespace {

/// Scale used when a range is zero, so that dividing by it never gives NaN.
constexpr double kMinScale = 1e-8;
/// Clipping ratios the mse calibration tries: r = k / kMseSteps for k = 1..kMseSteps, so the
/// minmax range itself (r = 1) is always a candidate and mse is never worse than minmax.
constexpr int kMseSteps = 100;

/// The p-th percentile (p in [0, 100]) of `values`, interpolating linearly between order
/// statistics like numpy's default; reorders `values`.
double percentile_of(std::vector<float>& values, double p) {
  if (values.empty()) return 0.0;
  const double pos = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(values.size() - 1);
  const auto lo_index = static_cast<size_t>(std::floor(pos));
  const double frac = pos - static_cast<double>(lo_index);
  std::nth_element(values.begin(), values.begin() + lo_index, values.end());
  const double lo = values[lo_index];
  if (frac == 0.0 || lo_index + 1 >= values.size()) return lo;
  // After nth_element everything past lo_index is >= values[lo_index]: the next order statistic
  // is the smallest of them.
  const double hi = *std::min_element(values.begin() + lo_index + 1, values.end());
  return lo + frac * (hi - lo);
}

/// Sum of squared errors of `values` on `grid`.
double grid_sq_error(const float* values, int64_t n, const UniformGrid& grid) {
  double err = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(values[i]) - grid.value(grid.code(values[i]));
    err += d * d;
  }
  return err;
}

UniformGrid percentile_grid(const float* values, int64_t n, GridKind kind, int bits,
                            const QuantConfig& config, double min_v, double max_v) {
  const double amax = std::max(std::fabs(min_v), std::fabs(max_v));
  double lo = 0.0, hi = 0.0;
  if (kind == GridKind::kSymmetric) {
    std::vector<float> mags(values, values + n);
    for (float& m : mags) m = std::fabs(m);
    hi = percentile_of(mags, config.percentile);
    lo = -hi;
  } else {
    std::vector<float> copy(values, values + n);
    hi = percentile_of(copy, config.percentile);
    lo = percentile_of(copy, 100.0 - config.percentile);
  }
  // A mostly-zero group (a pruned layer) can have a zero percentile while some values are not
  // zero; a zero range would erase them all, so keep the full range then.
  if (hi - lo > 0.0 || amax == 0.0) return make_grid(kind, lo, hi, bits);
  return make_grid(kind, min_v, max_v, bits);
}

UniformGrid mse_grid(const float* values, int64_t n, GridKind kind, int bits, double min_v,
                     double max_v) {
  UniformGrid best = make_grid(kind, min_v, max_v, bits);
  double best_err = grid_sq_error(values, n, best);
  // From the full range downwards; ties keep the wider range (clips fewer values).
  for (int k = kMseSteps - 1; k >= 1; --k) {
    const double r = static_cast<double>(k) / kMseSteps;
    const UniformGrid g = make_grid(kind, r * min_v, r * max_v, bits);
    const double err = grid_sq_error(values, n, g);
    if (err < best_err) {
      best_err = err;
      best = g;
    }
  }
  return best;
}

}  // namespace

// ------------------------------------------------------------------------------------- grids

UniformGrid make_grid(GridKind kind, double lo, double hi, int bits) {
  UniformGrid g;
  double scale = 0.0;
  switch (kind) {
    case GridKind::kSymmetric:
      g.q_max = (int64_t{1} << (bits - 1)) - 1;
      g.q_min = -g.q_max;
      scale = std::max(std::fabs(lo), std::fabs(hi)) / static_cast<double>(g.q_max);
      break;
    case GridKind::kUnsigned:
      g.q_max = (int64_t{1} << bits) - 1;
      scale = std::max(hi, 0.0) / static_cast<double>(g.q_max);
      break;
    case GridKind::kAffine:
      g.q_max = (int64_t{1} << bits) - 1;
      lo = std::min(lo, 0.0);
      hi = std::max(hi, 0.0);
      scale = (hi - lo) / static_cast<double>(g.q_max);
      break;
  }
  // Stored as float32; the floor keeps all-zero groups finite.
  g.scale = static_cast<float>(std::max(scale, kMinScale));
  if (kind == GridKind::kAffine) {
    // An integer zero point makes 0.0 exactly representable (zero padding, pruned weights).
    const double zp = std::nearbyint(-lo / static_cast<double>(g.scale));
    g.zero_point = static_cast<int64_t>(
        std::clamp(zp, static_cast<double>(g.q_min), static_cast<double>(g.q_max)));
  }
  return g;
}

// ------------------------------------------------------------------------------------ ranges

UniformGrid calibrated_grid(const float* values, int64_t n, GridKind kind, int bits,
                            const QuantConfig& config) {
  double min_v = 0.0, max_v = 0.0;
  if (n > 0) {
    const auto [mn, mx] = std::minmax_element(values, values + n);
    min_v = *mn;
    max_v = *mx;
  }
  if (config.calibration == "percentile")
    return percentile_grid(values, n, kind, bits, config, min_v, max_v);
  if (config.calibration == "mse") return mse_grid(values, n, kind, bits, min_v, max_v);
  return make_grid(kind, min_v, max_v, bits);  // minmax
}

void check_calibration(const QuantConfig& config) {
  if (!one_of(config.calibration, kCalibrations))
    throw ConfigError("quantization calibration '" + config.calibration +
                      "' is unknown; valid values: " + join(kCalibrations));
}

// ------------------------------------------------------------------------------------ levels

std::vector<double> midpoints_of(const std::vector<double>& sorted_levels) {
  std::vector<double> mids;
  for (size_t i = 1; i < sorted_levels.size(); ++i)
    mids.push_back(0.5 * (sorted_levels[i - 1] + sorted_levels[i]));
  return mids;
}

int64_t nearest_level(const std::vector<double>& midpoints, double v) {
  return std::upper_bound(midpoints.begin(), midpoints.end(), v) - midpoints.begin();
}

}  // namespace tightfit::policies::quant_schemes
