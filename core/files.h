#pragma once
// Files that are either whole or absent: results, tables and reports are written to a temporary
// file beside their destination and renamed over it, so a run killed mid-write never leaves a
// torn file where a reader (or --resume) expects a whole one.

#include <string>

namespace tightfit {

/// Writes `text` to `path` atomically (temporary file, then rename). Throws InputError naming
/// the path when it cannot be written (missing folder, no permission, disk full).
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace tightfit
