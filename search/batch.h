#pragma once
// Turns a batch of policies into final evaluations: what the journal holds is replayed (a resumed
// run asks the same policies in the same order, which is checked), repeats are answered from the
// evaluation cache, the rest go to the evaluation pool, and every observer sees the batch.

#include <deque>
#include <string>
#include <vector>

#include "search/eval_cache.h"
#include "search/eval_pool.h"
#include "search/observers.h"

namespace tightfit::search {

class BatchEvaluator {
 public:
  /// `replay`: evaluations read back from the journal, consumed oldest first; `replayed` counts
  /// them. Everything must outlive the evaluator.
  BatchEvaluator(std::deque<Evaluation>& replay, EvalCache& cache, EvalPool& pool, RunStats& stats,
                 int64_t& replayed);
  void add_observer(Observer& observer) { observers_.push_back(&observer); }

  /// The evaluations of `batch` as evaluations first_index, first_index + 1, ... of `kind`.
  std::vector<Evaluation> evaluate(const std::vector<policies::Policy>& batch, int64_t first_index,
                                   const std::string& kind);

 private:
  std::deque<Evaluation>& replay_;
  EvalCache& cache_;
  EvalPool& pool_;
  RunStats& stats_;
  int64_t& replayed_;
  std::vector<Observer*> observers_;
};

}  // namespace tightfit::search
