// Weight and activation quantizers (see quantize.h for the schemes and their papers).
//
// Map of this file:
//   config      QuantConfig parsing (strict) and the bit-width rules of check_weight_bits: 32
//               and 16 bits are float formats every scheme takes, integer widths are each
//               scheme's own rule.
//   weights     quantize_values dispatches by config.scheme through the scheme table
//               (quant_schemes/registry.cpp; a file per scheme family there), or rounds to
//               fp16/bf16 for 16 bits; quantize_weight adds up what storing the values costs.
//   activations calibrate_activation: the uniform schemes' ranges and grids, per tensor.
//   huffman     huffman_bits: total code length from the merge costs of a priority queue.
//
// Groups are output channels (dim 0, row-major, so a channel is one contiguous block) or the
// whole tensor.

#include "policies/quantize.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/errors.h"
#include "core/json.h"
#include "policies/quant_schemes/scheme.h"

namespace tightfit::policies {
namespace {

using quant_schemes::ChannelLayout;
using quant_schemes::GridKind;
using quant_schemes::layout_of;
using quant_schemes::one_of;
using quant_schemes::Scheme;
using quant_schemes::SchemeResult;

const std::vector<std::string> kFloat16Formats = {"fp16", "bf16"};

/// Bit-widths that are float formats, not integer codes: every scheme accepts them.
constexpr int kFloatBits = 32;
constexpr int kHalfBits = 16;

std::string bits_list(const std::vector<int>& bits) {
  std::vector<std::string> names;
  for (int b : bits) names.push_back(std::to_string(b));
  return join(names);
}

/// Why `bits` does not fit `scheme`, or "" when it does.
std::string bits_misfit(int bits, const Scheme& scheme) {
  if (bits == kFloatBits || bits == kHalfBits) return "";
  return scheme.bits_misfit(bits);
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
  const Scheme* scheme = quant_schemes::find_scheme(config.scheme);
  TIGHTFIT_CHECK(scheme != nullptr, "quantization scheme '" << config.scheme << "' unchecked");
  return scheme->quantize(w, bits, config);
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
  choice("scheme", c.scheme, quant_schemes::scheme_names());
  choice("granularity", c.granularity, quant_schemes::kGranularities);
  choice("calibration", c.calibration, quant_schemes::kCalibrations);
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
  const Scheme* scheme = quant_schemes::find_scheme(config.scheme);
  if (scheme == nullptr)
    throw ConfigError("layer '" + layer + "': quantization scheme '" + config.scheme +
                      "' is unknown; valid schemes: " + join(quant_schemes::scheme_names()));
  const std::string why = bits_misfit(bits, *scheme);
  if (!why.empty()) {
    std::vector<int> valid;
    for (int b : kWeightBits)
      if (bits_misfit(b, *scheme).empty()) valid.push_back(b);
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

// ----------------------------------------------------------------------------- activations

ActivationQuant calibrate_activation(const std::vector<float>& samples, int bits,
                                     const QuantConfig& config, bool non_negative) {
  TIGHTFIT_CHECK(bits >= 2 && bits <= kHalfBits, "activation bits " << bits);
  quant_schemes::check_calibration(config);
  // 16-bit activations are a 16-bit uniform grid: finer than any error the search can see.
  // Each scheme names its grid for activations that may be negative; a name outside the table
  // (a config that did not go through from_json) gets the affine one, which fits any range.
  const Scheme* scheme = quant_schemes::find_scheme(config.scheme);
  const GridKind kind = non_negative        ? GridKind::kUnsigned
                        : scheme != nullptr ? scheme->activation_grid
                                            : GridKind::kAffine;
  // Sub-8-bit grids already fit the int16 pair sums of non-VNNI int8 kernels.
  const int grid_bits = config.reduce_range && bits == 8 ? 7 : bits;
  const quant_schemes::UniformGrid g = quant_schemes::calibrated_grid(
      samples.data(), static_cast<int64_t>(samples.size()), kind, grid_bits, config);
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
