#pragma once
// Internal to the quantizers: one entry per weight-quantization scheme (each in its own file,
// named after it), the table that lists them (registry.cpp), and the helpers they share
// (shared.cpp). The public entry points are in policies/quantize.h; quantize.cpp dispatches by
// config.scheme through find_scheme().
//
// Adding a scheme: a new file here that defines its Scheme entry, its declaration below, and
// one line in kSchemes (registry.cpp). The CMake glob picks the file up.
//
// Conventions every scheme follows: weights are groups of contiguous values (output channels,
// dim 0, or the whole tensor); the dequantized values are written back as float32 exactly as a
// backend reconstructs them (scales rounded to float32 first); every weight gets one integer
// code, one to one with its channel's values, for Huffman coding and the distinct-value count;
// all-zero or empty groups (pruned channels) come out as zeros, never NaN.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "graph/network.h"
#include "policies/quantize.h"

namespace tightfit::policies::quant_schemes {

/// Bytes of one stored scale, zero point or centroid (float32 each, as quantize.h states).
constexpr int64_t kParamBytes = 4;

inline const std::vector<std::string> kGranularities = {"per_channel", "per_tensor"};
inline const std::vector<std::string> kCalibrations = {"minmax", "percentile", "mse"};

/// What the uniform schemes and kmeans answer for 1 bit: only sign and scale fit in it.
inline const std::string kOneBitNeedsBinary = "1 bit needs scheme 'binary'";

inline bool one_of(const std::string& value, const std::vector<std::string>& valid) {
  return std::find(valid.begin(), valid.end(), value) != valid.end();
}

/// Quantization of one tensor: dequantized values written back, plus what storing it costs.
struct SchemeResult {
  std::vector<int64_t> codes;  ///< integer code of every weight, for Huffman coding
  int64_t metadata_bytes = 0;
};

/// Dim 0 of a weight tensor and the values per output channel.
struct ChannelLayout {
  int64_t channels = 1;
  int64_t per_channel = 0;
};

inline ChannelLayout layout_of(const graph::Tensor& w) {
  ChannelLayout l;
  const int64_t n = static_cast<int64_t>(w.data.size());
  l.channels = w.shape.empty() ? 1 : w.shape[0];
  l.per_channel = l.channels > 0 ? n / l.channels : 0;
  return l;
}

/// Which integer grid a range is mapped onto.
enum class GridKind {
  kSymmetric,  ///< {-qmax..qmax} * scale, qmax = 2^(b-1) - 1, zero point 0
  kUnsigned,   ///< {0..2^b-1} * scale, zero point 0 (non-negative activations)
  kAffine,     ///< ({0..2^b-1} - zero_point) * scale, range widened to contain 0
};

/// One weight-quantization scheme, as the table in registry.cpp lists it.
struct Scheme {
  const char* name;
  /// Writes the scheme's values into `w` at integer width `bits` (one that bits_misfit
  /// accepts; 16 bits never reaches a scheme) and returns the codes and metadata.
  SchemeResult (*quantize)(graph::Tensor& w, int bits, const QuantConfig& config);
  /// Why integer width `bits` does not fit the scheme, or "" when it does. Only widths of
  /// kWeightBits below 16 are asked: 32 and 16 are float formats every scheme accepts.
  std::string (*bits_misfit)(int bits);
  /// The grid of activations that may be negative (non-negative ones are always kUnsigned).
  GridKind activation_grid;
};

// The entries, one per file (uniform.cpp holds both uniform grids).
extern const Scheme kSymmetricScheme;
extern const Scheme kAffineScheme;
extern const Scheme kKmeansScheme;
extern const Scheme kPow2Scheme;
extern const Scheme kBinaryScheme;

// ---------------------------------------------------------------------------------------------
// The table (registry.cpp).

/// The entry named `name`, or nullptr: callers word the error for their context.
const Scheme* find_scheme(const std::string& name);

/// The scheme names in table order, for "valid schemes: ..." messages.
std::vector<std::string> scheme_names();

// ---------------------------------------------------------------------------------------------
// Shared helpers (shared.cpp).

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
UniformGrid make_grid(GridKind kind, double lo, double hi, int bits);

/// The grid for one group of `n` values, its range chosen by config.calibration (minmax,
/// percentile, or mse).
UniformGrid calibrated_grid(const float* values, int64_t n, GridKind kind, int bits,
                            const QuantConfig& config);

/// Throws ConfigError when config.calibration is none of kCalibrations.
void check_calibration(const QuantConfig& config);

/// The midpoints between consecutive sorted levels.
std::vector<double> midpoints_of(const std::vector<double>& sorted_levels);

/// Index of the level nearest to v, given the midpoints between consecutive sorted levels
/// (a value exactly on a midpoint goes to the upper level).
int64_t nearest_level(const std::vector<double>& midpoints, double v);

}  // namespace tightfit::policies::quant_schemes
