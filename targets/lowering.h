#pragma once
// What the compiled backends (the oneDNN engine, LibTorch's quantized ops) share when they lower
// a graph::Network: parameters by name, BatchNorm folded into the layer before it, and integer
// weights recovered from fake-quantized ones (policies/ leaves conv/linear weights as float32
// values on a symmetric per-output-channel grid, weight = code * scale_o).

#include <cstdint>
#include <string>
#include <vector>

#include "graph/network.h"

namespace tightfit::targets {

/// Parameter `key` of node `n`; InputError naming both when it is missing.
const graph::Tensor& param(const graph::Node& n, const std::string& key);

/// Folds batch_norm `bn` (inference statistics) into the layer before it, per output channel o:
/// y = gamma (x + bias - mean) / sqrt(var + eps) + beta = mult[o] x' + bias[o], where x' is the
/// layer's output without its bias. `bias` holds the layer's bias (zeros for none) on entry and
/// the folded bias on return; `mult` is set.
void fold_batch_norm(const graph::Node& bn, std::vector<double>& mult, std::vector<double>& bias);

/// A weight tensor as integer codes with one scale per output channel (dim 0).
struct Int8Weights {
  std::vector<int8_t> codes;   ///< integer weights, the graph's weight layout
  std::vector<double> scales;  ///< per output channel: weight = code * scale (0: all codes 0)
};

/// Integer codes of `w` on a symmetric per-output-channel grid of 8 bits or fewer (scale =
/// max|w_o| / (2^(b-1) - 1)); false when some channel lies on no such grid.
bool weight_codes(const graph::Tensor& w, Int8Weights& out);

/// True when every code lies in [-64, 63]: u8 x s8 products then accumulate exactly in int16
/// pairs on CPUs without VNNI, whatever the activations.
bool within_7_bits(const Int8Weights& w);

/// `w` times the per-output-channel multipliers `mult` (e.g. a folded BN) with every scale
/// positive: a negative product moves its sign into the (symmetric) codes, and a zero one zeroes
/// the codes with scale 1 (the layer's output is then its bias).
Int8Weights with_multipliers(const Int8Weights& w, const std::vector<double>& mult);

}  // namespace tightfit::targets
