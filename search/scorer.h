#pragma once
// Scores one candidate: applies its policy, counts size and FLOPs, asks the cost model for its
// latency, and has the evaluator score its accuracy. Cost and accuracy are separate calls because
// they run differently: costs one candidate at a time (a latency measurement never shares the
// device, invariant 3), accuracies as parallel as the evaluation pool allows.
//
// Strategies with budgets check proposals before asking for them (predict()); the networks
// compressed for that are kept by policy key for the evaluation that follows, so a candidate is
// compressed once.

#include <list>
#include <map>
#include <optional>
#include <string>

#include "search/evaluation.h"
#include "search/run_stats.h"
#include "search/session.h"
#include "search/strategy.h"

namespace tightfit::search {

/// Compressed networks by policy key, at most `max_bytes` of parameters; the oldest go first.
class NetworkCache {
 public:
  explicit NetworkCache(int64_t max_bytes) : max_bytes_(max_bytes) {}
  void put(const std::string& key, policies::CompressedNetwork net, int64_t bytes);
  /// The network kept under `key`, removed from the cache; nullopt when there is none.
  std::optional<policies::CompressedNetwork> take(const std::string& key);

 private:
  struct Entry {
    policies::CompressedNetwork net;
    int64_t bytes = 0;
    std::list<std::string>::iterator age;  ///< its place in order_
  };
  void drop(std::map<std::string, Entry>::iterator it);
  int64_t max_bytes_;
  int64_t bytes_ = 0;
  std::map<std::string, Entry> entries_;
  std::list<std::string> order_;  // oldest first
};

class CandidateScorer {
 public:
  /// `session` (target, evaluator and cost model open) and `stats` must outlive the scorer.
  CandidateScorer(const Session& session, RunStats& stats);

  /// Sets `e`'s policy, size, params, FLOPs and latency, and `candidate` to the compressed
  /// network; a failure is recorded in `e.error` (a failed candidate is data).
  void cost(const policies::Policy& policy, Evaluation& e, policies::CompressedNetwork& candidate);
  /// Sets `e`'s accuracy and loss (unless it already failed). Safe to call concurrently.
  void accuracy(Evaluation& e, const policies::CompressedNetwork& candidate) const;

  /// Size and FLOPs counted, latency predicted (-1 when the cost model times on the target).
  PredictedCost predict(const policies::Policy& policy);
  /// predict() for strategies with budgets, and its latency alone for strategies that plan with
  /// it (empty when the cost model times on the target: strategies never run anything).
  CostPredictor cost_predictor();
  LatencyPredictor latency_predictor();

  RunStats& stats() { return stats_; }

 private:
  const Session& session_;
  RunStats& stats_;
  NetworkCache precompressed_;
};

}  // namespace tightfit::search
