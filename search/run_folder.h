#pragma once
// A search's folder (--out) and its journal. Everything a user can get wrong about the folder is
// checked before any expensive work starts: a new run refuses a folder that holds a journal (a
// journal is never overwritten); --resume needs one, written for the same config, and reads its
// evaluations back for replay.
//
// The folder is locked before anything is read or written in it: an advisory flock on DIR/.lock,
// held for the life of the process and released by the kernel when it ends, however it ends, so
// a killed run leaves no stale lock and --resume after a crash just works. A second process on
// the same folder (a re-submitted array task, two shells) stops at once, naming the holder.

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
  /// Locks the folder (created if missing), then checks its journal against `opts` and `config`.
  RunFolder(const RunOptions& opts, const SearchConfig& config);
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;

  /// Creates the folder and opens the journal for appending (a new run's starts with a header
  /// naming the config).
  Journal& open_journal();
  /// Evaluations read back from the journal, oldest first, for the controller to replay.
  std::deque<Evaluation>& replay() { return replay_; }
  const std::filesystem::path& path() const { return dir_; }
  std::string journal_path() const { return (dir_ / "evaluations.jsonl").string(); }

 private:
  /// Takes the folder's lock or throws InputError naming the process that holds it.
  void lock();
  /// InputError when the folder takes no new files, or a name the search writes at its end is
  /// held by something that is not a file (or `models` by something not a folder).
  void check_writable() const;

  /// Closes the lock's descriptor, which releases the lock.
  struct LockFd {
    int fd = -1;
    ~LockFd();
  };

  const SearchConfig& config_;
  std::filesystem::path dir_;
  LockFd lock_;
  JournalContents previous_;
  std::deque<Evaluation> replay_;
  std::unique_ptr<Journal> journal_;
};

}  // namespace tightfit::search
