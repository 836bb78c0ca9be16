#pragma once
// Where a search's time went (search/controller.h reports it in front.json's context).

#include <cstdint>
#include <nlohmann/json.hpp>

namespace tightfit::search {

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

}  // namespace tightfit::search
