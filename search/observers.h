#pragma once
// Observers see every batch of evaluations once it is final, in evaluation order, between the
// pool and the strategy's tell (as TVM MetaSchedule's measure callbacks sit beside its task
// scheduler): the journal, the evaluation cache, the run's archive, progress on stderr. Adding
// something that watches a search is one more observer, not another branch in the controller.

#include <cstdint>
#include <string>
#include <vector>

#include "core/timing.h"
#include "search/evaluation.h"
#include "search/journal.h"
#include "search/run_stats.h"
#include "search/session.h"

namespace tightfit::search {

struct SearchResult;

/// Where an evaluation of a batch came from.
enum class Origin {
  kJournal,   ///< read back from the journal (--resume): already recorded everywhere
  kCache,     ///< a copy of an earlier evaluation of the same policy
  kComputed,  ///< evaluated by the pool now
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void observe(const std::vector<Evaluation>& batch,
                       const std::vector<Origin>& origins) = 0;
};

/// Appends every evaluation not read back from the journal, fsynced (invariant 4).
class JournalObserver : public Observer {
 public:
  JournalObserver(Journal& journal, RunStats& stats) : journal_(journal), stats_(stats) {}
  void observe(const std::vector<Evaluation>& batch, const std::vector<Origin>& origins) override;

 private:
  Journal& journal_;
  RunStats& stats_;
};

/// Keeps the run's evaluations (the uncompressed baseline apart) in the result, and the best
/// real proxy score so far.
class ArchiveObserver : public Observer {
 public:
  explicit ArchiveObserver(SearchResult& result) : result_(result) {}
  void observe(const std::vector<Evaluation>& batch, const std::vector<Origin>& origins) override;
  double best_accuracy() const { return best_accuracy_; }

 private:
  SearchResult& result_;
  double best_accuracy_ = 0;
};

/// After each search batch computed now: evaluations, best accuracy, front size, hypervolume,
/// elapsed time and, when the strategy says how many it evaluates, an ETA.
class ProgressObserver : public Observer {
 public:
  /// `start`: when the run started (elapsed time and ETA count from it).
  ProgressObserver(const SearchConfig& config, const SearchResult& result,
                   const ArchiveObserver& archive, int64_t uniforms, Clock::time_point start,
                   const Say& say);
  void observe(const std::vector<Evaluation>& batch, const std::vector<Origin>& origins) override;

 private:
  const SearchResult& result_;
  const ArchiveObserver& archive_;
  int64_t total_ = -1;  ///< evaluations the run will make, when known
  Say say_;
  Clock::time_point start_;
};

}  // namespace tightfit::search
