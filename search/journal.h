#pragma once
// evaluations.jsonl, the search's journal: a header line naming the config, then one JSON line
// per evaluation, each flushed and fsynced so that an evaluation counts once it is on disk
// (invariant 4). A run killed mid-write leaves a torn last line, which readers drop.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tightfit::search {

inline constexpr const char* kJournalFormat = "tightfit-search-journal";

/// Appends lines to a journal file, fsyncing each.
class Journal {
 public:
  /// Opens `path` for appending from byte `keep` on (what an earlier run left complete; 0 for a
  /// new journal): a torn last line is cut off before anything is appended.
  Journal(const std::string& path, int64_t keep);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  void append(const nlohmann::json& j);

 private:
  int fd_ = -1;
};

/// What a journal holds: its header (null when the file has none yet), its complete evaluation
/// lines, and their byte length (a torn last line not counted).
struct JournalContents {
  nlohmann::json header;
  std::vector<nlohmann::json> lines;
  int64_t complete_bytes = 0;
};

/// Reads `path`; a missing file, a header of another format or a malformed line before the last
/// one is an InputError naming the file.
JournalContents read_journal(const std::string& path);

}  // namespace tightfit::search
