#pragma once
// A search's folder (--out) and its journal. Everything a user can get wrong about the folder is
// checked before any expensive work starts: a new run refuses a folder that holds a journal (a
// journal is never overwritten); --resume needs one, written for the same config, and reads its
// evaluations back for replay.

#include <deque>
#include <filesystem>
#include <memory>
#include <string>

#include "search/config.h"
#include "search/controller.h"
#include "search/evaluation.h"
#include "search/journal.h"

namespace tightfit::search {

class RunFolder {
 public:
  RunFolder(const RunOptions& opts, const SearchConfig& config);

  /// Creates the folder and opens the journal for appending (a new run's starts with a header
  /// naming the config).
  Journal& open_journal();
  /// Evaluations read back from the journal, oldest first, for the controller to replay.
  std::deque<Evaluation>& replay() { return replay_; }
  const std::filesystem::path& path() const { return dir_; }
  std::string journal_path() const { return (dir_ / "evaluations.jsonl").string(); }

 private:
  const SearchConfig& config_;
  std::filesystem::path dir_;
  JournalContents previous_;
  std::deque<Evaluation> replay_;
  std::unique_ptr<Journal> journal_;
};

}  // namespace tightfit::search
