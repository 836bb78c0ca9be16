#pragma once
// The container of tightfit's binary files, the network file (.tfn) and the PruningNet file
// (.pnet): 8 magic bytes, a uint32 format version, a JSON header (uint64 length, then its text),
// raw little-endian float32 data (uint64 length, then the bytes) and a CRC-32 of all of it. Files
// are written under a temporary name and renamed, so a crash never leaves half a file behind.
// Missing, foreign, truncated, corrupted and newer files are rejected with an InputError that
// says which, and how to get a good one.

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace tightfit::graph {

/// One kind of file: its identity, and the words its errors use.
struct FileKind {
  std::array<char, 8> magic;
  uint32_t version;        ///< files are written with it; newer ones are refused
  std::string format;      ///< the header's "format" value
  std::string label;       ///< names a file in errors: "<label> '<path>'"
  std::string kind;        ///< what a foreign file is not: "a <kind>"
  std::string written_by;  ///< the commands that write one
  std::string remedy;      ///< what to do about a damaged one
};

struct ContainerContents {
  nlohmann::json header;  ///< "format" checked against the kind
  std::string bytes;      ///< the whole file, as read
  size_t data_begin = 0;  ///< where the float32 data starts in `bytes`
  size_t data_size = 0;
  /// The float32 data, as stored (a view into `bytes`: no copy of a file that may be large).
  std::string_view data() const { return std::string_view(bytes).substr(data_begin, data_size); }
};

/// Writes `header` (its "format" set to the kind's) and `data` to `path`, atomically.
void write_container(const std::string& path, const FileKind& kind, nlohmann::json header,
                     const std::string& data);
/// Reads and checks a whole file: magic, version, lengths, checksum, header.
ContainerContents read_container(const std::string& path, const FileKind& kind);
/// Reads the header only (the data may be tens of MB); the checksum is not verified.
nlohmann::json read_container_header(const std::string& path, const FileKind& kind);

/// "<label> '<path>'", as errors name the file.
std::string describe_file(const FileKind& kind, const std::string& path);

}  // namespace tightfit::graph
