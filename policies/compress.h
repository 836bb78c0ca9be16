#pragma once
// Applying a policy to a network, in this order:
//   1. structured pruning: channels ranked by the policy's criterion over each whole channel
//      group (residual-coupled layers keep the same channels); ThiNet refits the consumers;
//   2. low-rank factorization of the layers given a rank;
//   3. unstructured magnitude pruning (per-layer or one global threshold), masks recorded;
//   4. weight quantization per layer with the policy's scheme (factors inherit their layer's
//      bits), masks re-applied so pruned weights stay zero;
//   5. activation fake-quantization nodes before the layers given activation bits, ranges
//      calibrated on calibration data.
// The result is a new, runnable Network plus per-layer annotations and honest size accounting.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "graph/network.h"
#include "policies/calibration.h"
#include "policies/lowrank.h"
#include "policies/policy.h"

namespace tightfit::policies {

struct ApplyOptions {
  /// Channels kept are rounded to a multiple of this (never below min(multiple, channels)).
  int64_t channel_multiple = 1;
  /// Training-split batches for data-driven criteria and activation ranges (may be null when
  /// the policy needs none).
  const Calibration* calibration = nullptr;
  uint64_t seed = 0;  ///< random criterion, k-means tie-breaks
};

/// What was done to one conv/linear layer of the compressed network and what it costs to store.
struct LayerInfo {
  std::string origin;  ///< the layer of the original network it comes from
  int weight_bits = 32;
  int act_bits = 32;           ///< bits of its input activation (32 = not quantized)
  std::string scheme;          ///< quantization scheme when weight_bits < 32
  double sparsity = 0;         ///< share of zero weights enforced by a mask
  int64_t weights = 0;         ///< weight count
  int64_t nonzeros = 0;        ///< weights stored (all of them when dense)
  int64_t code_bytes = 0;      ///< the weights' values at their bits (or Huffman-coded)
  int64_t metadata_bytes = 0;  ///< scales, zero points, codebooks
  int64_t index_bytes = 0;     ///< sparse positions: the cheaper of a bitmask and CSR indices
  int64_t weight_bytes() const { return code_bytes + metadata_bytes + index_bytes; }
};

/// A compressed network and what was done to it.
struct CompressedNetwork {
  graph::Network net;
  Policy policy;
  std::map<std::string, int> weight_bits;        ///< every conv/linear layer -> bits
  std::map<std::string, int64_t> kept_channels;  ///< every decision point -> channels kept
  std::map<std::string, LayerInfo> layers;       ///< every conv/linear layer of `net`
  std::map<std::string, graph::Tensor> masks;    ///< layer -> 0/1 mask of its weight (sparse ones)
  std::vector<LowRankReport> lowrank;            ///< one per factorization asked for
};

/// Number of channels a group of `channels` keeps at `fraction` (rounded to `multiple`).
int64_t channels_to_keep(int64_t channels, double fraction, int64_t multiple);

/// Applies `policy` to `net` (validated first). Never yields a layer with zero channels. Throws
/// ConfigError when the policy needs calibration data and `opts.calibration` has none.
CompressedNetwork apply(const graph::Network& net, const Policy& policy,
                        const ApplyOptions& opts = {});

/// Puts the conv/linear weights of `c.net` back on what `c.policy`'s quantizer represents, masks
/// applied after, and recounts `c.layers`. For a network trained after apply(): training moves
/// weights through straight-through fake-quantization on a symmetric per-channel grid
/// (graph::Executor::constrain_weights), so k-means, pow2, binary, affine, per-tensor or 16-bit
/// weights are not what the policy describes until this runs. Leaves weights already on the
/// policy's grid as they are (symmetric per-channel minmax: up to float rounding).
void requantize_weights(CompressedNetwork& c, uint64_t seed);

/// True when applying `policy` needs calibration data.
bool needs_calibration(const Policy& policy);

/// Fake-quantizes `w` in place: per output channel (dim 0), symmetric, `bits` in [2, 16].
void fake_quantize_per_channel(graph::Tensor& w, int bits);

/// Bytes to store the compressed network: every conv/linear weight per its LayerInfo (codes,
/// metadata, sparse indices; float32 when not annotated), biases and BatchNorm parameters in
/// float32.
int64_t size_bytes(const CompressedNetwork& c);

/// Bits of a sparse index structure for `nonzeros` of `rows` x `cols` weights: the cheaper of a
/// bitmask (one bit per weight) and CSR (column index per nonzero + 32-bit row pointers).
int64_t sparse_index_bits(int64_t rows, int64_t cols, int64_t nonzeros);

}  // namespace tightfit::policies
