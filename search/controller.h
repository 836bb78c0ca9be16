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

namespace tightfit::search {

struct RunOptions {
  std::string out_dir;   ///< created if missing
  bool progress = true;  ///< progress lines on stderr
  bool resume = false;   ///< continue the run journaled in out_dir (never overwritten otherwise)
};

/// Where a run's time went, timed inside the controller (seconds, summed over the run). The
/// evaluation proper is `latency` (table prediction or measurement) plus `accuracy` (the proxy,
/// wall time of each batch's parallel phase); everything else spent between the first and the
/// last evaluation is the engine's own: applying policies, counting size and FLOPs, the
/// strategy's ask/tell, pre-screening, the journal and shared cache (written and fsynced), and the
/// rest (policy keys, cache look-ups, progress, hypervolume), timed as the loop's wall time minus
/// the named parts.
struct RunStats {
  int64_t computed = 0;  ///< candidates evaluated in this run (not replayed, not from a cache)
  /// Of those, the ones whose network the cost predictor had compressed already (budget filter)
  int64_t reused_compressions = 0;
  double setup = 0;  ///< loading network and data, evaluator, target, latency table
  double loop = 0;   ///< first evaluation (the baseline) to the strategy's last tell
  double latency = 0;
  double accuracy = 0;
  double apply = 0;
  double count_cost = 0;
  double strategy = 0;
  double screen = 0;
  double journal = 0;
  double finish = 0;  ///< after the loop: front measured, fine-tuned, networks and reports written

  double evaluation() const { return latency + accuracy; }
  double engine() const { return loop - evaluation(); }
  /// The rest of the loop: keys, cache look-ups, progress, bookkeeping.
  double other() const { return engine() - apply - count_cost - strategy - screen - journal; }
  /// Engine time over evaluation time (0 when nothing was evaluated).
  double overhead_share() const { return evaluation() > 0 ? engine() / evaluation() : 0; }
  nlohmann::json to_json() const;
};

struct SearchResult {
  Evaluation baseline;
  std::vector<Evaluation> evaluations;  ///< in evaluation order
  std::vector<size_t> front;            ///< indices into `evaluations`, by latency
  nlohmann::json best;                  ///< budget runs: best under budget or the closest
  int64_t replayed = 0;                 ///< evaluations read back from the journal (--resume)
  RunStats stats;
  nlohmann::json context;
};

SearchResult run_search(const SearchConfig& config, const RunOptions& opts);

/// Indices of the non-dominated successful evaluations over (accuracy up, latency down, size
/// down), sorted by latency.
std::vector<size_t> pareto_front(const std::vector<Evaluation>& evaluations);

/// The front as a fixed-width table (for the terminal).
std::string front_table(const SearchResult& result);

}  // namespace tightfit::search
