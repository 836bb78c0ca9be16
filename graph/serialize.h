#pragma once
// The tightfit network file (.tfn): magic "TFITNET1", format version, a JSON header with the
// structure and parameter shapes, raw little-endian float32 parameter data, and a CRC-32 of all
// of it. Truncated, corrupted, foreign and newer files are rejected with an InputError that says
// which of those it is.

#include <string>

#include "graph/network.h"

namespace tightfit::graph {

inline constexpr uint32_t kFileFormatVersion = 1;

void save_network(const Network& net, const std::string& path);
Network load_network(const std::string& path);

/// Whether the file at `path` starts with the network file's magic bytes (reads 8 bytes).
bool has_network_magic(const std::string& path);

}  // namespace tightfit::graph
