#include "graph/container.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "core/errors.h"
#include "core/files.h"
#include "core/json.h"

namespace tightfit::graph {
namespace {

// magic + version + header length
constexpr size_t kPrefixBytes = 8 + sizeof(uint32_t) + sizeof(uint64_t);

template <typename T>
void put(std::string& buf, T v) {
  buf.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

template <typename T>
T get(const std::string& buf, size_t& pos) {
  T v;
  std::memcpy(&v, buf.data() + pos, sizeof(T));
  pos += sizeof(T);
  return v;
}

std::ifstream open(const std::string& path, const FileKind& kind) {
  check_readable_file(path, kind.label, "check the path (" + kind.written_by + " writes one)");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw InputError("cannot open " + describe_file(kind, path) + ": check the path (" +
                     kind.written_by + " writes one)");
  return in;
}

/// Checks the magic bytes, the prefix and the version; returns the header length. `buf` starts
/// at the beginning of the file (it may be only its prefix).
uint64_t check_prefix(const std::string& buf, const FileKind& kind, const std::string& where) {
  // A file cut inside the magic bytes is a truncated file of this kind, not a foreign one.
  const size_t magic_bytes = std::min(buf.size(), kind.magic.size());
  if (buf.empty() || std::memcmp(buf.data(), kind.magic.data(), magic_bytes) != 0)
    throw InputError(where + " is not a " + kind.kind +
                     " (wrong magic bytes); pass a file written by " + kind.written_by);
  if (buf.size() < kPrefixBytes)
    throw InputError(where + " is truncated (" + std::to_string(buf.size()) + " bytes); " +
                     kind.remedy);
  size_t pos = kind.magic.size();
  const auto version = get<uint32_t>(buf, pos);
  if (version > kind.version)
    throw InputError(where + " has format version " + std::to_string(version) +
                     ", newer than this tightfit reads (" + std::to_string(kind.version) +
                     "); upgrade tightfit");
  return get<uint64_t>(buf, pos);
}

nlohmann::json parse_header(const std::string& text, const FileKind& kind,
                            const std::string& where) {
  nlohmann::json header;
  try {
    header = parse_json_text(text, where + "'s header");
  } catch (const ConfigError& e) {
    throw InputError(std::string(e.what()) + " (" + kind.remedy + ")");
  }
  const std::string format =
      header.is_object() && header.contains("format") && header["format"].is_string()
          ? header["format"].get<std::string>()
          : std::string();
  if (format != kind.format)
    throw InputError(where + " is not a " + kind.kind + " (header format '" + format + "')");
  return header;
}

}  // namespace

std::string describe_file(const FileKind& kind, const std::string& path) {
  return kind.label + " '" + path + "'";
}

void write_container(const std::string& path, const FileKind& kind, nlohmann::json header,
                     const std::string& data) {
  header["format"] = kind.format;
  const std::string header_text = header.dump();
  std::string buf(kind.magic.data(), kind.magic.size());
  put<uint32_t>(buf, kind.version);
  put<uint64_t>(buf, header_text.size());
  buf += header_text;
  put<uint64_t>(buf, data.size());
  buf += data;
  const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(buf.data()), buf.size());
  put<uint32_t>(buf, static_cast<uint32_t>(crc));

  write_file_atomic(path, buf);
}

ContainerContents read_container(const std::string& path, const FileKind& kind) {
  auto in = open(path, kind);
  std::string buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string where = describe_file(kind, path);
  const uint64_t header_len = check_prefix(buf, kind, where);
  size_t pos = kPrefixBytes;
  if (header_len > buf.size() || pos + header_len + sizeof(uint64_t) > buf.size())
    throw InputError(where + " is truncated (header cut off at " + std::to_string(buf.size()) +
                     " bytes); " + kind.remedy);
  const std::string header_text = buf.substr(pos, header_len);
  pos += header_len;
  const auto data_len = get<uint64_t>(buf, pos);  // the data starts at pos
  const uint64_t expected = pos + data_len + sizeof(uint32_t);
  if (data_len > buf.size() || expected > buf.size())
    throw InputError(where + " is truncated (" + std::to_string(buf.size()) + " of " +
                     std::to_string(expected) + " bytes); " + kind.remedy);
  if (expected < buf.size())
    throw InputError(where + " has " + std::to_string(buf.size() - expected) +
                     " unexpected trailing bytes; " + kind.remedy);
  uint32_t stored_crc;
  std::memcpy(&stored_crc, buf.data() + expected - sizeof(uint32_t), sizeof(uint32_t));
  const uLong crc =
      crc32(0L, reinterpret_cast<const Bytef*>(buf.data()), expected - sizeof(uint32_t));
  if (static_cast<uint32_t>(crc) != stored_crc)
    throw InputError(where + " is corrupted (checksum mismatch); " + kind.remedy);
  auto header = parse_header(header_text, kind, where);
  return {std::move(header), std::move(buf), pos, static_cast<size_t>(data_len)};
}

nlohmann::json read_container_header(const std::string& path, const FileKind& kind) {
  auto in = open(path, kind);
  const std::string where = describe_file(kind, path);
  std::string buf(kPrefixBytes, '\0');
  in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
  buf.resize(static_cast<size_t>(in.gcount()));
  const uint64_t header_len = check_prefix(buf, kind, where);
  in.seekg(0, std::ios::end);
  const auto file_size = static_cast<uint64_t>(in.tellg());
  if (header_len > file_size || kPrefixBytes + header_len > file_size)
    throw InputError(where + " is truncated (header cut off at " + std::to_string(file_size) +
                     " bytes); " + kind.remedy);
  std::string header_text(static_cast<size_t>(header_len), '\0');
  in.clear();
  in.seekg(static_cast<std::streamoff>(kPrefixBytes));
  in.read(header_text.data(), static_cast<std::streamsize>(header_text.size()));
  return parse_header(header_text, kind, where);
}

}  // namespace tightfit::graph
