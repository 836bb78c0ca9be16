// Weight and activation quantizers (see quantize.h for the schemes and their papers).
//
// Map of this file:
//   config      QuantConfig parsing (strict) and the bit-width rules of check_weight_bits.
//   ranges      percentile and the clipping range of one group of values by the calibration
//               method: minmax, percentile, or mse (a search over shrunk minmax ranges).
//   grids       UniformGrid: scale, zero point and integer bounds of a symmetric, unsigned or
//               affine grid, and the round/clamp/dequantize of one value.
//   weights     one function per scheme, each writing the dequantized values back into the
//               tensor and the integer code of every weight (for Huffman coding), then
//               quantize_weight, which adds up what storing them costs.
//   activations calibrate_activation: the same ranges and grids, per tensor.
//   huffman     huffman_bits: total code length from the merge costs of a priority queue.
//
// Groups are output channels (dim 0, row-major, so a channel is one contiguous block) or the
// whole tensor. Scales are rounded to float32 before use because that is how they are stored
// (and counted in metadata_bytes), so the fake-quantized values equal what a backend computes.
// Every group whose range is zero gets a tiny positive scale instead of 0: all-zero or empty
// channels (pruned ones) must come out as zeros, never NaN.

#include "policies/quantize.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/errors.h"
#include "core/json.h"

namespace tightfit::policies {
namespace {

const std::vector<std::string> kSchemes = {"symmetric", "affine", "kmeans", "pow2", "binary"};
const std::vector<std::string> kGranularities = {"per_channel", "per_tensor"};
const std::vector<std::string> kCalibrations = {"minmax", "percentile", "mse"};
const std::vector<std::string> kFloat16Formats = {"fp16", "bf16"};

/// Bytes of one stored scale, zero point or centroid (float32 each, as quantize.h states).
constexpr int64_t kParamBytes = 4;
/// Scale used when a range is zero, so that dividing by it never gives NaN.
constexpr double kMinScale = 1e-8;
/// Clipping ratios the mse calibration tries: r = k / kMseSteps for k = 1..kMseSteps, so the
/// minmax range itself (r = 1) is always a candidate and mse is never worse than minmax.
constexpr int kMseSteps = 100;
/// Lloyd iterations of k-means at most; on weight tensors it settles in far fewer.
constexpr int kKmeansMaxIterations = 30;
/// Largest integer width k-means may use (a 2^8 = 256-entry codebook per tensor).
constexpr int kKmeansMaxBits = 8;
/// Bit-widths that are float formats, not integer codes: every scheme accepts them.
constexpr int kFloatBits = 32;
constexpr int kHalfBits = 16;

bool one_of(const std::string& value, const std::vector<std::string>& valid) {
  return std::find(valid.begin(), valid.end(), value) != valid.end();
}

std::string bits_list(const std::vector<int>& bits) {
  std::vector<std::string> names;
  for (int b : bits) names.push_back(std::to_string(b));
  return join(names);
}

/// Why integer width `bits` does not fit `scheme`, or "" when it does. 32 (unchanged) and 16
/// (fp16/bf16 rounding) are float formats that every scheme accepts.
std::string bits_misfit(int bits, const std::string& scheme) {
  if (bits == kFloatBits || bits == kHalfBits) return "";
  if (scheme == "binary" && bits != 1) return "binary weights take 1 bit";
  if (scheme == "pow2" && bits < 2)
    return "pow2 needs 2 bits or more for sign, exponent and zero; 1 bit is scheme 'binary'";
  if (scheme != "binary" && bits == 1) return "1 bit needs scheme 'binary'";
  if (scheme == "kmeans" && bits > kKmeansMaxBits)
    return "k-means codebooks hold at most 2^" + std::to_string(kKmeansMaxBits) + " entries";
  return "";
}

// ---------------------------------------------------------------------------------- ranges

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

/// Which integer grid a range is mapped onto.
enum class GridKind {
  kSymmetric,  ///< {-qmax..qmax} * scale, qmax = 2^(b-1) - 1, zero point 0
  kUnsigned,   ///< {0..2^b-1} * scale, zero point 0 (non-negative activations)
  kAffine,     ///< ({0..2^b-1} - zero_point) * scale, range widened to contain 0
};

/// A uniform grid: value = (q - zero_point) * scale with q in [q_min, q_max].
struct UniformGrid {
  float scale = 1.0f;
  int64_t zero_point = 0;
  int64_t q_min = 0;
  int64_t q_max = 0;

  int64_t code(float v) const {
    const double q = std::nearbyint(static_cast<double>(v) / scale) + zero_point;
    return static_cast<int64_t>(
        std::clamp(q, static_cast<double>(q_min), static_cast<double>(q_max)));
  }
  // Integer subtraction first: the zero point dequantizes to exactly +0.0.
  float value(int64_t q) const { return static_cast<float>(q - zero_point) * scale; }
};

/// The grid of `kind` and `bits` covering [lo, hi] (for kSymmetric, [-max(|lo|,|hi|), ..]).
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

/// Sum of squared errors of `values` on `grid`.
double grid_sq_error(const float* values, int64_t n, const UniformGrid& grid) {
  double err = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(values[i]) - grid.value(grid.code(values[i]));
    err += d * d;
  }
  return err;
}

/// The grid for one group of values, its range chosen by config.calibration.
UniformGrid calibrated_grid(const float* values, int64_t n, GridKind kind, int bits,
                            const QuantConfig& config) {
  double min_v = 0.0, max_v = 0.0;
  if (n > 0) {
    const auto [mn, mx] = std::minmax_element(values, values + n);
    min_v = *mn;
    max_v = *mx;
  }
  const double amax = std::max(std::fabs(min_v), std::fabs(max_v));

  if (config.calibration == "percentile") {
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

  if (config.calibration == "mse") {
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

  return make_grid(kind, min_v, max_v, bits);  // minmax
}

// --------------------------------------------------------------------------------- weights

/// Dim 0 of a weight tensor and the values per output channel.
struct ChannelLayout {
  int64_t channels = 1;
  int64_t per_channel = 0;
};

ChannelLayout layout_of(const graph::Tensor& w) {
  ChannelLayout l;
  const int64_t n = static_cast<int64_t>(w.data.size());
  l.channels = w.shape.empty() ? 1 : w.shape[0];
  l.per_channel = l.channels > 0 ? n / l.channels : 0;
  return l;
}

/// Quantization of one tensor: dequantized values written back, plus what storing it costs.
struct SchemeResult {
  std::vector<int64_t> codes;  ///< integer code of every weight, for Huffman coding
  int64_t metadata_bytes = 0;
};

SchemeResult quantize_uniform(graph::Tensor& w, int bits, const QuantConfig& config) {
  const GridKind kind = config.scheme == "affine" ? GridKind::kAffine : GridKind::kSymmetric;
  const int64_t params_per_group = kind == GridKind::kAffine ? 2 : 1;  // scale [+ zero point]
  ChannelLayout l = layout_of(w);
  if (config.granularity == "per_tensor") l = {1, static_cast<int64_t>(w.data.size())};

  SchemeResult r;
  r.codes.resize(w.data.size());
  for (int64_t c = 0; c < l.channels; ++c) {
    float* p = w.data.data() + c * l.per_channel;
    const UniformGrid g = calibrated_grid(p, l.per_channel, kind, bits, config);
    for (int64_t i = 0; i < l.per_channel; ++i) {
      const int64_t q = g.code(p[i]);
      r.codes[static_cast<size_t>(c * l.per_channel + i)] = q;
      p[i] = g.value(q);
    }
  }
  r.metadata_bytes = l.channels * params_per_group * kParamBytes;
  return r;
}

/// Index of the level nearest to v, given the midpoints between consecutive sorted levels
/// (a value exactly on a midpoint goes to the upper level).
int64_t nearest_level(const std::vector<double>& midpoints, double v) {
  return std::upper_bound(midpoints.begin(), midpoints.end(), v) - midpoints.begin();
}

std::vector<double> midpoints_of(const std::vector<double>& sorted_levels) {
  std::vector<double> mids;
  for (size_t i = 1; i < sorted_levels.size(); ++i)
    mids.push_back(0.5 * (sorted_levels[i - 1] + sorted_levels[i]));
  return mids;
}

// 1-D k-means. With sorted centroids every cluster is a contiguous run of the sorted values
// (the cells are split at the midpoints), so one Lloyd step is a binary search per midpoint
// and a mean from prefix sums: O(k log n) per iteration after one O(n log n) sort.
SchemeResult quantize_kmeans(graph::Tensor& w, int bits) {
  SchemeResult r;
  const size_t n = w.data.size();
  r.codes.assign(n, 0);
  if (n == 0) return r;

  std::vector<double> sorted(w.data.begin(), w.data.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> prefix(n + 1, 0.0);
  for (size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + sorted[i];

  // Linear initialization between min and max: Deep Compression (Han et al. 2016) found it
  // beats random and density-based initialization because it keeps centroids on the few
  // large weights that matter most. It is also deterministic. Weights that take no more values
  // than there are centroids (already shared, as after a fine-tune through this quantizer)
  // keep exactly those values.
  std::vector<double> distinct;
  for (double v : sorted) {
    if (distinct.empty() || v != distinct.back()) distinct.push_back(v);
    if (distinct.size() > (size_t{1} << bits)) break;
  }
  std::vector<double> centroids = distinct;
  if (distinct.size() > (size_t{1} << bits)) {
    const double lo = sorted.front(), hi = sorted.back();
    const int64_t k = int64_t{1} << bits;
    centroids.resize(static_cast<size_t>(k));
    for (int64_t i = 0; i < k; ++i)
      centroids[i] = lo + (hi - lo) * static_cast<double>(i) / (k - 1);
  }
  const auto k = static_cast<int64_t>(centroids.size());

  std::vector<size_t> starts(static_cast<size_t>(k) + 1, 0), previous;
  for (int it = 0; it < kKmeansMaxIterations; ++it) {
    const std::vector<double> mids = midpoints_of(centroids);
    // Cluster i holds sorted[starts[i] .. starts[i+1]): the values in [mids[i-1], mids[i]).
    starts.front() = 0;
    starts.back() = n;
    for (size_t i = 0; i < mids.size(); ++i)
      starts[i + 1] = static_cast<size_t>(std::lower_bound(sorted.begin(), sorted.end(), mids[i]) -
                                          sorted.begin());
    if (starts == previous) break;  // assignments stopped changing
    previous = starts;
    for (size_t i = 0; i < centroids.size(); ++i) {
      const size_t count = starts[i + 1] - starts[i];
      // An empty cluster keeps its centroid; it is dropped from the codebook below.
      if (count > 0)
        centroids[i] = (prefix[starts[i + 1]] - prefix[starts[i]]) / static_cast<double>(count);
    }
  }

  // The stored codebook: float32 centroids that have members, sorted (the mean of a contiguous
  // run of sorted values keeps centroids in order).
  std::vector<double> codebook;
  {
    const std::vector<double> mids = midpoints_of(centroids);
    std::vector<bool> used(centroids.size(), false);
    for (double v : sorted) used[static_cast<size_t>(nearest_level(mids, v))] = true;
    for (size_t i = 0; i < centroids.size(); ++i) {
      const double c = static_cast<float>(centroids[i]);
      if (used[i] && (codebook.empty() || c != codebook.back())) codebook.push_back(c);
    }
  }
  const std::vector<double> mids = midpoints_of(codebook);
  for (size_t i = 0; i < n; ++i) {
    const int64_t q = nearest_level(mids, w.data[i]);
    r.codes[i] = q;
    w.data[i] = static_cast<float>(codebook[static_cast<size_t>(q)]);
  }
  r.metadata_bytes = static_cast<int64_t>(codebook.size()) * kParamBytes;
  return r;
}

// Powers of two (INQ, Zhou et al. 2017): per channel, levels 0 and +-s * 2^-e for
// e = 0..2^(b-1)-2 with s = max|w|, so b bits hold sign, exponent and a zero code. The code of
// a weight is its signed level index (0 = zero, +-1 = the smallest power, ...).
SchemeResult quantize_pow2(graph::Tensor& w, int bits) {
  const ChannelLayout l = layout_of(w);
  const int64_t exponents = (int64_t{1} << (bits - 1)) - 1;
  SchemeResult r;
  r.codes.resize(w.data.size());
  for (int64_t c = 0; c < l.channels; ++c) {
    float* p = w.data.data() + c * l.per_channel;
    double s = 0.0;
    for (int64_t i = 0; i < l.per_channel; ++i) s = std::max(s, std::fabs(double{p[i]}));
    const float scale = static_cast<float>(s);  // stored as float32
    // Magnitudes ascending: 0, s*2^-(E-1), ..., s*2^-1, s. Multiplying a float by a power of
    // two is exact, so these are exactly the values a backend reconstructs.
    std::vector<double> magnitudes = {0.0};
    for (int64_t e = exponents - 1; e >= 0; --e)
      magnitudes.push_back(static_cast<float>(std::ldexp(double{scale}, -static_cast<int>(e))));
    const std::vector<double> mids = midpoints_of(magnitudes);
    for (int64_t i = 0; i < l.per_channel; ++i) {
      const double v = p[i];
      // Nearest in linear distance; ties of |v| on a midpoint go to the larger level.
      const int64_t level = scale == 0.0f ? 0 : nearest_level(mids, std::fabs(v));
      const float m = static_cast<float>(magnitudes[static_cast<size_t>(level)]);
      const bool negative = v < 0.0 && m > 0.0f;  // zero stays +0.0
      r.codes[static_cast<size_t>(c * l.per_channel + i)] = negative ? -level : level;
      p[i] = negative ? -m : m;
    }
  }
  r.metadata_bytes = l.channels * kParamBytes;
  return r;
}

// Binary weights (BinaryConnect; XNOR-Net's scale): alpha * sign(w) per channel with
// alpha = mean|w|, the scale that minimizes the squared error for fixed signs.
SchemeResult quantize_binary(graph::Tensor& w) {
  const ChannelLayout l = layout_of(w);
  SchemeResult r;
  r.codes.resize(w.data.size());
  for (int64_t c = 0; c < l.channels; ++c) {
    float* p = w.data.data() + c * l.per_channel;
    double sum_abs = 0.0;
    for (int64_t i = 0; i < l.per_channel; ++i) sum_abs += std::fabs(double{p[i]});
    const float alpha =
        l.per_channel > 0 ? static_cast<float>(sum_abs / static_cast<double>(l.per_channel)) : 0;
    for (int64_t i = 0; i < l.per_channel; ++i) {
      const bool negative = p[i] < 0.0f;  // sign(0) = +1
      r.codes[static_cast<size_t>(c * l.per_channel + i)] = negative ? 0 : 1;
      p[i] = negative ? -alpha : alpha;
    }
  }
  r.metadata_bytes = l.channels * kParamBytes;
  return r;
}

/// Rounds every value to fp16 or bf16 and back (round to nearest even, as the hardware does).
void round_to_half(graph::Tensor& w, const std::string& format) {
  // Values past the largest finite half saturate rather than become inf: an inf weight would
  // turn every output it touches into NaN, and no trained weight is that large anyway.
  if (format == "bf16") {
    const float max_finite = std::numeric_limits<c10::BFloat16>::max();
    for (float& v : w.data) v = c10::BFloat16(std::clamp(v, -max_finite, max_finite));
  } else {
    const float max_finite = std::numeric_limits<c10::Half>::max();
    for (float& v : w.data) v = c10::Half(std::clamp(v, -max_finite, max_finite));
  }
}

int64_t max_distinct_per_channel(const graph::Tensor& w) {
  const ChannelLayout l = layout_of(w);
  int64_t most = 0;
  std::vector<float> values;
  for (int64_t c = 0; c < l.channels; ++c) {
    const float* p = w.data.data() + c * l.per_channel;
    values.assign(p, p + l.per_channel);
    std::sort(values.begin(), values.end());
    // std::unique compares with ==, so -0.0 and +0.0 count as one value.
    const auto distinct = std::unique(values.begin(), values.end()) - values.begin();
    most = std::max<int64_t>(most, distinct);
  }
  return most;
}

/// Same count from the integer codes (one per weight, channel-major like the weights): codes map
/// one to one onto a channel's values, and counting them is linear, where sorting every channel
/// of a 100M-weight layer for each candidate would dominate a search.
int64_t max_distinct_codes_per_channel(const std::vector<int64_t>& codes, const ChannelLayout& l) {
  if (codes.empty() || l.per_channel == 0) return 0;
  const auto [lo, hi] = std::minmax_element(codes.begin(), codes.end());
  std::vector<int64_t> last_seen(static_cast<size_t>(*hi - *lo + 1), -1);
  int64_t most = 0;
  for (int64_t c = 0; c < l.channels; ++c) {
    int64_t distinct = 0;
    for (int64_t i = 0; i < l.per_channel; ++i) {
      int64_t& seen = last_seen[static_cast<size_t>(codes[c * l.per_channel + i] - *lo)];
      if (seen != c) {
        seen = c;
        ++distinct;
      }
    }
    most = std::max(most, distinct);
  }
  return most;
}

/// The scheme's values written into `w`, and the codes the accounting needs (none for 16 bits).
SchemeResult quantize_values(graph::Tensor& w, int bits, const QuantConfig& config) {
  if (bits == kHalfBits) {
    round_to_half(w, config.float16);
    return {};
  }
  if (config.scheme == "symmetric" || config.scheme == "affine") {
    if (!one_of(config.granularity, kGranularities))
      throw ConfigError("quantization granularity '" + config.granularity +
                        "' is unknown; valid values: " + join(kGranularities));
    if (!one_of(config.calibration, kCalibrations))
      throw ConfigError("quantization calibration '" + config.calibration +
                        "' is unknown; valid values: " + join(kCalibrations));
    return quantize_uniform(w, bits, config);
  }
  if (config.scheme == "kmeans") return quantize_kmeans(w, bits);
  if (config.scheme == "pow2") return quantize_pow2(w, bits);
  return quantize_binary(w);
}

void check_weight_call(const graph::Tensor& w, int bits, const QuantConfig& config) {
  TIGHTFIT_CHECK(bits < kFloatBits, "quantizing weights needs bits < 32, got " << bits);
  TIGHTFIT_CHECK(static_cast<int64_t>(w.data.size()) == w.numel(), "tensor data and shape differ");
  // Callers check bits per layer with its name first; this catches the ones that did not.
  check_weight_bits(bits, config, "(unnamed weight)");
}

}  // namespace

// ---------------------------------------------------------------------------------- config

QuantConfig QuantConfig::from_json(const nlohmann::json& j, const std::string& where) {
  check_keys(j, section_keys<QuantConfig>(), where);  // null is not a config here
  const auto c = read_section<QuantConfig>(j, where);
  const auto choice = [&](const std::string& key, const std::string& value,
                          const std::vector<std::string>& valid) {
    if (!one_of(value, valid))
      throw ConfigError(where + "." + key + " is '" + value + "'; valid values: " + join(valid));
  };
  choice("scheme", c.scheme, kSchemes);
  choice("granularity", c.granularity, kGranularities);
  choice("calibration", c.calibration, kCalibrations);
  choice("float16", c.float16, kFloat16Formats);
  if (!(c.percentile > 50.0 && c.percentile <= 100.0))
    throw ConfigError(where + ".percentile is " + nlohmann::json(c.percentile).dump() +
                      "; it must be in (50, 100], e.g. 99.99");
  return c;
}

nlohmann::json QuantConfig::to_json() const { return write_section(*this); }

void check_weight_bits(int bits, const QuantConfig& config, const std::string& layer) {
  if (std::find(kWeightBits.begin(), kWeightBits.end(), bits) == kWeightBits.end())
    throw ConfigError("layer '" + layer + "': " + std::to_string(bits) +
                      " weight bits are not supported; valid values: " + bits_list(kWeightBits));
  if (!one_of(config.scheme, kSchemes))
    throw ConfigError("layer '" + layer + "': quantization scheme '" + config.scheme +
                      "' is unknown; valid schemes: " + join(kSchemes));
  const std::string why = bits_misfit(bits, config.scheme);
  if (!why.empty()) {
    std::vector<int> valid;
    for (int b : kWeightBits)
      if (bits_misfit(b, config.scheme).empty()) valid.push_back(b);
    throw ConfigError("layer '" + layer + "': " + std::to_string(bits) +
                      " weight bits do not fit quantization scheme '" + config.scheme + "' (" +
                      why + "); valid values for '" + config.scheme + "': " + bits_list(valid));
  }
}

// --------------------------------------------------------------------------------- weights

QuantizedWeight quantize_weight(graph::Tensor& w, int bits, const QuantConfig& config,
                                uint64_t seed) {
  // k-means starts from a linear (deterministic) initialization, and 1-D Lloyd steps on sorted
  // values have no ties to break, so no scheme needs the seed today; it stays in the interface
  // for a randomized initialization.
  (void)seed;
  check_weight_call(w, bits, config);
  const SchemeResult r = quantize_values(w, bits, config);
  QuantizedWeight result;
  result.bits = bits;
  const auto numel = static_cast<int64_t>(w.data.size());
  if (bits == kHalfBits) {
    result.code_bits = numel * kHalfBits;
    result.max_distinct_per_channel = max_distinct_per_channel(w);
    return result;
  }
  result.code_bits = config.huffman ? huffman_bits(r.codes) : numel * bits;
  result.metadata_bytes = r.metadata_bytes;
  result.max_distinct_per_channel = max_distinct_codes_per_channel(r.codes, layout_of(w));
  return result;
}

void fake_quantize_weight(graph::Tensor& w, int bits, const QuantConfig& config) {
  check_weight_call(w, bits, config);
  quantize_values(w, bits, config);
}

std::function<void(graph::Tensor&)> kmeans_weight_sharing(int bits) {
  TIGHTFIT_CHECK(bits >= 1 && bits <= 8, "k-means weight sharing at " << bits << " bits");
  // Each weight's cluster and each cluster's size, fixed by the first call.
  struct Sharing {
    std::vector<int64_t> cluster;
    std::vector<int64_t> members;
  };
  auto sharing = std::make_shared<Sharing>();
  return [bits, sharing](graph::Tensor& w) {
    if (sharing->cluster.empty()) {
      graph::Tensor first = w;
      sharing->cluster = quantize_kmeans(first, bits).codes;
      const int64_t k = *std::max_element(sharing->cluster.begin(), sharing->cluster.end()) + 1;
      sharing->members.assign(static_cast<size_t>(k), 0);
      for (int64_t c : sharing->cluster) ++sharing->members[static_cast<size_t>(c)];
    }
    TIGHTFIT_CHECK(sharing->cluster.size() == w.data.size(),
                   "weight sharing: the tensor changed size");
    std::vector<double> sum(sharing->members.size(), 0.0);
    for (size_t i = 0; i < w.data.size(); ++i)
      sum[static_cast<size_t>(sharing->cluster[i])] += w.data[i];
    for (size_t c = 0; c < sum.size(); ++c)
      if (sharing->members[c] > 0) sum[c] /= static_cast<double>(sharing->members[c]);
    for (size_t i = 0; i < w.data.size(); ++i)
      w.data[i] = static_cast<float>(sum[static_cast<size_t>(sharing->cluster[i])]);
  };
}

// ----------------------------------------------------------------------------- activations

ActivationQuant calibrate_activation(const std::vector<float>& samples, int bits,
                                     const QuantConfig& config, bool non_negative) {
  TIGHTFIT_CHECK(bits >= 2 && bits <= kHalfBits, "activation bits " << bits);
  if (!one_of(config.calibration, kCalibrations))
    throw ConfigError("quantization calibration '" + config.calibration +
                      "' is unknown; valid values: " + join(kCalibrations));
  // 16-bit activations are a 16-bit uniform grid: finer than any error the search can see.
  const GridKind kind = non_negative                   ? GridKind::kUnsigned
                        : config.scheme == "symmetric" ? GridKind::kSymmetric
                                                       : GridKind::kAffine;
  // Sub-8-bit grids already fit the int16 pair sums of non-VNNI int8 kernels.
  const int grid_bits = config.reduce_range && bits == 8 ? 7 : bits;
  const UniformGrid g = calibrated_grid(samples.data(), static_cast<int64_t>(samples.size()), kind,
                                        grid_bits, config);
  ActivationQuant a;
  a.scale = g.scale;
  a.zero_point = g.zero_point;
  a.q_min = g.q_min;
  a.q_max = g.q_max;
  return a;
}

// --------------------------------------------------------------------------------- huffman

int64_t huffman_bits(const std::vector<int64_t>& symbols) {
  if (symbols.empty()) return 0;
  std::unordered_map<int64_t, int64_t> freq;
  for (int64_t s : symbols) ++freq[s];
  // A code needs at least one bit per symbol even when there is nothing to distinguish.
  if (freq.size() == 1) return static_cast<int64_t>(symbols.size());
  // Every merge of the two lightest subtrees lengthens each code below them by one bit, so the
  // total code length is the sum of all merged weights; no tree needs to be built.
  std::priority_queue<int64_t, std::vector<int64_t>, std::greater<>> heap;
  for (const auto& symbol_count : freq) heap.push(symbol_count.second);
  int64_t total_bits = 0;
  while (heap.size() > 1) {
    const int64_t a = heap.top();
    heap.pop();
    const int64_t b = heap.top();
    heap.pop();
    total_bits += a + b;
    heap.push(a + b);
  }
  return total_bits;
}

}  // namespace tightfit::policies
