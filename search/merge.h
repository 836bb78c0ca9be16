#pragma once
// Merging the fronts of many runs of one model and target (a grid of seeds, budgets or
// strategies): the non-dominated members of all their fronts, each with the run it came from.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tightfit::search {

/// One run folder as the merge found it.
struct MergedRun {
  std::string dir;
  std::string status;  ///< "finished" (front.json), "unfinished" (a journal only), "missing"
  size_t front = 0;    ///< members of its front (finished runs)
};

struct MergeResult {
  /// {"front": [members, each with "run"], "baseline", "runs": [...], "context"}: front.json's
  /// shape, so the report renders it.
  nlohmann::json doc;
  std::vector<MergedRun> runs;
  std::vector<nlohmann::json> evaluations;  ///< every finished run's journal lines
};

/// The union of the fronts of the finished runs in `dirs`, reduced to its non-dominated members
/// (accuracy up, latency down, size down; sorted by latency). Runs that are missing or
/// unfinished are named, not merged. InputError when no run has finished, or when two runs are
/// of different models, targets or precisions (their latencies cannot share one front).
MergeResult merge_runs(const std::vector<std::string>& dirs);

/// Writes `out`/front.json and `out`/report.html for `merged`.
void write_merge(const MergeResult& merged, const std::string& out);

}  // namespace tightfit::search
