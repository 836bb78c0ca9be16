#pragma once
// Evaluations already made, by policy: within a run the network, evaluator, target and cost model
// are fixed, so the policy is the content. Across runs, an optional JSON-lines file shared by many
// runs holds results under a key of everything a result depends on besides the policy
// (cache_context), so no candidate is evaluated twice by runs that agree on them, and none is
// reused by a run that differs in any of them.

#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "search/evaluation.h"
#include "search/observers.h"
#include "search/session.h"

namespace tightfit::search {

/// Everything a result depends on besides its policy: the network's content; the data (data
/// set, settings and folder, split, the images' content hash); the calibration batches (seed and
/// sizes); the evaluator and its settings (seeds included); the target, its protocol and the CPU
/// (model and instruction sets); the channel rounding; the cost model and its table; the tightfit
/// version. Results are shared only between runs whose contexts are equal.
nlohmann::json cache_context(const Session& session);

class EvalCache : public Observer {
 public:
  /// This run's own cache, plus the shared file the config names (if any): its lines for this
  /// session's key are read, and new results appended.
  EvalCache(const Session& session, RunStats& stats, const Say& say);

  /// The evaluation made for `key` (a policy's JSON), or nullptr.
  const Evaluation* find(const std::string& key) const;
  /// Remembers `e` for this run (a replayed or computed evaluation); the first one stays.
  void remember(const std::string& key, const Evaluation& e);
  /// Remembers the evaluations computed now, and appends those the proxy scored to the shared
  /// file.
  void observe(const std::vector<Evaluation>& batch, const std::vector<Origin>& origins) override;

 private:
  RunStats& stats_;
  std::map<std::string, Evaluation> entries_;
  std::string context_key_;
  std::unique_ptr<std::ofstream> shared_;
};

}  // namespace tightfit::search
