#pragma once
// Applying a policy: structured pruning (L1-norm filter ranking summed over each channel group, so
// residual-coupled layers keep the same channels) and per-channel symmetric fake quantization of
// weights. The result is a new, smaller, runnable Network with per-layer annotations.

#include <cstdint>
#include <map>
#include <string>

#include "graph/network.h"
#include "policies/policy.h"

namespace tightfit::policies {

struct ApplyOptions {
  /// Channels kept are rounded to a multiple of this (never below min(multiple, channels)).
  int64_t channel_multiple = 1;
};

/// A compressed network and what was done to it.
struct CompressedNetwork {
  graph::Network net;
  Policy policy;
  std::map<std::string, int> weight_bits;  ///< every conv/linear layer -> bits it is stored at
  std::map<std::string, int64_t> kept_channels;  ///< every decision point -> channels kept
};

/// Number of channels a group of `channels` keeps at `fraction` (rounded to `multiple`; a
/// fraction of 1 keeps them all, whatever the multiple).
int64_t channels_to_keep(int64_t channels, double fraction, int64_t multiple);

/// Applies `policy` to `net` (validated first). Never yields a layer with zero channels.
CompressedNetwork apply(const graph::Network& net, const Policy& policy,
                        const ApplyOptions& opts = {});

/// Fake-quantizes `w` in place: per output channel (dim 0), symmetric, `bits` in [2, 16].
void fake_quantize_per_channel(graph::Tensor& w, int bits);

/// Bytes to store the compressed network: conv/linear weights at their bits plus one fp32 scale
/// per output channel when quantized; biases and BatchNorm parameters in fp32.
int64_t size_bytes(const CompressedNetwork& c);

}  // namespace tightfit::policies
