#pragma once
// Weight and activation quantizers. Weights are quantized in place to the values the scheme can
// represent (fake quantization: they stay float32 so any backend can run them) and the function
// reports what storing them really costs: the codes at their bits (or Huffman-coded), plus
// scales, zero points and codebooks.
//
// Schemes (a file per family under quant_schemes/, listed in quant_schemes/registry.cpp):
//   symmetric, affine  uniform grid, per output channel or per tensor, range from the
//                      calibration method (minmax, percentile, mse)
//   kmeans             codebook of 2^b centroids per tensor (Gong et al.; Deep Compression)
//   pow2               levels 0 and +-2^k times a scale (INQ)
//   binary             sign(w) times a per-channel scale mean|w| (BinaryConnect/XNOR)
//   16 bits            rounding to fp16 or bf16, whatever the scheme

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "graph/network.h"

namespace tightfit::policies {

/// Weight bit-widths a policy may ask for (32 = unchanged float32).
inline const std::vector<int> kWeightBits = {32, 16, 8, 6, 4, 3, 2, 1};
/// Activation bit-widths a policy may ask for.
inline const std::vector<int> kActivationBits = {32, 16, 8, 6, 4, 3, 2};

struct QuantConfig {
  std::string scheme = "symmetric";         ///< symmetric | affine | kmeans | pow2 | binary
  std::string granularity = "per_channel";  ///< per_channel | per_tensor (uniform schemes)
  std::string calibration = "minmax";       ///< minmax | percentile | mse (uniform schemes)
  double percentile = 99.99;                ///< for calibration = percentile, in (50, 100]
  std::string float16 = "fp16";             ///< fp16 | bf16: what 16 bits means
  bool huffman = false;                     ///< count code bits after Huffman coding
  /// 8-bit activations on a 7-bit grid ([0, 127] unsigned), as FBGEMM does on x86 CPUs without
  /// VNNI: their u8 x s8 int8 kernels sum product pairs in int16, which saturates on full-range
  /// codes. Costs a bit of activation precision; lets 8-bit weights run in int8 exactly there.
  bool reduce_range = false;

  template <typename Fields>
  void fields(Fields& f) {
    f("scheme", scheme);
    f("granularity", granularity);
    f("calibration", calibration);
    f("percentile", percentile);
    f("float16", float16);
    f("huffman", huffman);
    f("reduce_range", reduce_range);
  }
  /// Strict: unknown keys and values are ConfigErrors listing the valid ones.
  static QuantConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
};

/// The weight-quantization schemes, in the order of their registry
/// (policies/quant_schemes/registry.cpp).
std::vector<std::string> quant_scheme_names();

/// What storing one quantized weight tensor costs.
struct QuantizedWeight {
  int bits = 32;
  int64_t code_bits = 0;       ///< the weights' codes: numel x bits, or the Huffman-coded total
  int64_t metadata_bytes = 0;  ///< scales, zero points, codebooks (float32 each)
  int64_t max_distinct_per_channel = 0;  ///< most distinct values in one output channel
  int64_t bytes() const { return (code_bits + 7) / 8 + metadata_bytes; }
};

/// Throws ConfigError when `bits` is not allowed or does not fit the scheme (binary needs 1 bit,
/// 1 bit needs binary; kmeans up to 8 bits; pow2 needs >= 2 bits).
void check_weight_bits(int bits, const QuantConfig& config, const std::string& layer);

/// Quantizes `w` (dim 0 = output channels) in place to `bits` (< 32) with `config`; `seed`
/// drives k-means initialization.
QuantizedWeight quantize_weight(graph::Tensor& w, int bits, const QuantConfig& config,
                                uint64_t seed);

/// quantize_weight's values without its accounting (code bits, metadata, distinct codes): what
/// training through the quantizer calls in every step.
void fake_quantize_weight(graph::Tensor& w, int bits, const QuantConfig& config);

/// Training through k-means weight sharing (Deep Compression, Han et al. 2016): the first call
/// clusters `w` as quantize_weight's kmeans scheme does and fixes each weight's cluster; every
/// call sets each weight to the mean of its cluster's current values. Under a straight-through
/// gradient the shared values then move by the mean gradient of their members while the
/// codebook keeps its size. (Clustering again in every step instead lets the codebook jump as
/// the range moves: a trained 4-bit resnet8 lost 7 points in 40 steps that way.)
std::function<void(graph::Tensor&)> kmeans_weight_sharing(int bits);

/// Per-tensor activation fake-quant parameters from observed activation values.
struct ActivationQuant {
  double scale = 1.0;
  int64_t zero_point = 0;
  int64_t q_min = 0;
  int64_t q_max = 255;
};

/// Range from `samples` by config.calibration; `non_negative` (after ReLU) uses an unsigned grid
/// with zero point 0; otherwise symmetric for "symmetric" and affine for "affine"/others.
ActivationQuant calibrate_activation(const std::vector<float>& samples, int bits,
                                     const QuantConfig& config, bool non_negative);

/// Total bits of the Huffman code of `symbols` (0 for an empty input; 1 bit per symbol when only
/// one symbol occurs).
int64_t huffman_bits(const std::vector<int64_t>& symbols);

}  // namespace tightfit::policies
