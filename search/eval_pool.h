#pragma once
// Evaluation pools: where candidates are evaluated. The controller hands a pool a batch of jobs
// and gets their evaluations back in order; how the work is spread is the pool's business. The
// first pool runs in this process on TBB threads; an MPI pool, whose ranks score accuracy while
// rank 0 runs the strategy, is a second implementation of the same interface.
//
// Every pool keeps latency exclusive (invariant 3): costs are taken one candidate at a time
// before any accuracy is scored, and only accuracies run in parallel.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "search/evaluation.h"
#include "search/scorer.h"

namespace tightfit::search {

/// One candidate to evaluate and its place in the run.
struct EvalJob {
  policies::Policy policy;
  int64_t index = 0;            ///< evaluation number (-1: the uncompressed baseline)
  std::string kind = "search";  ///< "search", "baseline" or "uniform"
};

/// Given a costed candidate, its predicted accuracy when it should not be scored (screening);
/// nullopt to score it.
using ScreenHook = std::function<std::optional<double>(const Evaluation&)>;

class EvalPool {
 public:
  virtual ~EvalPool() = default;
  virtual std::string name() const = 0;
  /// The evaluations of `jobs`, in order; a candidate that fails is an evaluation with an error.
  virtual std::vector<Evaluation> evaluate(const std::vector<EvalJob>& jobs) = 0;
};

/// The in-process pool: accuracies of up to `parallel` candidates at once on a TBB arena, each
/// with the evaluator's own thread count. `screen` may be empty.
std::unique_ptr<EvalPool> make_thread_pool(CandidateScorer& scorer, int64_t parallel,
                                           ScreenHook screen);

}  // namespace tightfit::search
