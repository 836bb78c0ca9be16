#pragma once
// The search controller: loads the network and data, scores the uncompressed baseline and the
// uniform baselines, then loops strategy.ask() -> apply policy -> latency (measured on the target
// or predicted by its latency table) -> proxy accuracy -> journal line -> strategy.tell(), and
// finally writes the Pareto front over (accuracy up, latency down, size down), the best candidate
// under the budget, and each front member's compressed network.
//
// The journal (evaluations.jsonl) starts with a header naming the config; every evaluation is
// one line, fsynced. --resume reads it back (a torn last line is dropped), refuses a changed
// config, and replays the strategy against the journaled results: strategies are deterministic
// given their seed, so the run continues exactly where it was killed and ends with the front an
// uninterrupted run would have produced.

#include <string>
#include <vector>

#include "search/config.h"
#include "search/evaluation.h"
#include "search/front.h"
#include "search/run_stats.h"

namespace tightfit::search {

struct RunOptions {
  std::string out_dir;   ///< created if missing
  bool progress = true;  ///< progress lines on stderr
  bool resume = false;   ///< continue the run journaled in out_dir (never overwritten otherwise)
};

struct SearchResult {
  Evaluation baseline;
  std::vector<Evaluation> evaluations;  ///< in evaluation order
  std::vector<size_t> front;            ///< indices into `evaluations`, by latency
  nlohmann::json best;                  ///< budget runs: best under budget or the closest
  Budget budget;  ///< the config's budget with relative limits resolved on the baseline
  int64_t replayed = 0;                 ///< evaluations read back from the journal (--resume)
  RunStats stats;
  nlohmann::json context;
};

SearchResult run_search(const SearchConfig& config, const RunOptions& opts);

}  // namespace tightfit::search
