#pragma once
// What the compiled backends (the oneDNN engine, LibTorch's quantized ops) share when they lower
// a graph::Network: parameters by name and BatchNorm folded into the layer before it. Their int8
// lowering (integer weights, activation grids, which layers run int8, VNNI) is in targets/int8.h.

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

}  // namespace tightfit::targets
