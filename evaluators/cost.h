#pragma once
// Cost counters of a compressed network: parameters, FLOPs and stored bytes.

#include <cstdint>

#include "policies/compress.h"

namespace tightfit::evaluators {

struct Cost {
  int64_t params = 0;      ///< weights and biases (BN affine included, running stats not)
  int64_t flops = 0;       ///< per image: 2 x multiply-accumulates of conv and linear layers
  int64_t size_bytes = 0;  ///< policies::size_bytes (bits-aware)
};

Cost count_cost(const policies::CompressedNetwork& c);

/// Multiply-accumulates per image of conv and linear layers.
int64_t count_macs(const graph::Network& net);

}  // namespace tightfit::evaluators
