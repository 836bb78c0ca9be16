#pragma once
// The hashes that name a network in files and caches: a latency table records the structure it
// was profiled for, a PruningNet the network (weights included) it was trained for, and the
// evaluation cache the network whose accuracies it holds. One definition each, so two files that
// name the same network always agree.

#include <string>

#include "graph/network.h"

namespace tightfit::graph {

/// FNV-1a of the network's structure: node names, ops, output shapes and inputs; not weights.
/// Equal for two networks a latency table times alike.
std::string structure_hash(const Network& net);

/// FNV-1a of everything that makes the network compute what it does: structure, attributes,
/// parameter shapes and values, input shape and output node.
std::string content_hash(const Network& net);

}  // namespace tightfit::graph
