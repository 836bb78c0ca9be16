#pragma once
// Files that are either whole or absent: results, tables and reports are written to a temporary
// file beside their destination and renamed over it, so a run killed mid-write never leaves a
// torn file where a reader (or --resume) expects a whole one.

#include <string>

namespace tightfit {

/// Writes `text` to `path` atomically (temporary file, then rename). Throws InputError naming
/// the path when it cannot be written (missing folder, no permission, disk full).
void write_file_atomic(const std::string& path, const std::string& text);

/// The whole of the file at `path`. InputError "cannot open <what> '<path>': <reason>; <fix>",
/// the reason being what the system says (no such file, is a directory, permission denied).
std::string read_whole_file(const std::string& path, const std::string& what,
                            const std::string& fix);

/// The first bytes of a zip archive, as TorchScript files and torch.save files are.
inline constexpr const char* kZipMagic = "PK\x03\x04";

/// Whether the file at `path` begins with the bytes `magic` (false when it cannot be read).
bool file_starts_with(const std::string& path, const std::string& magic);

/// Throws InputError when `path` cannot be read as a regular file (same message as
/// read_whole_file); reads nothing.
void check_readable_file(const std::string& path, const std::string& what, const std::string& fix);

}  // namespace tightfit
