#pragma once
// One evaluated candidate: its policy and every figure the search ranks it by. This is also the
// line format of evaluations.jsonl.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "policies/policy.h"

namespace tightfit::search {

struct Evaluation {
  int64_t index = -1;           ///< order of evaluation in the run (-1 = baseline)
  std::string kind = "search";  ///< "search", "baseline" (uncompressed) or "uniform"
  policies::Policy policy;
  double accuracy = 0;  ///< proxy top-1 on the validation subset, [0, 1]
  /// "proxy" (scored by the evaluator) or "predictor" (screened out: predicted, never scored)
  std::string accuracy_source = "proxy";
  double loss = 0;
  double latency_ms = 0;         ///< median on the target, lower is better
  double latency_spread_ms = 0;  ///< interquartile range of the timed runs
  int64_t size_bytes = 0;
  int64_t params = 0;
  int64_t flops = 0;
  std::string latency_source = "measured";  ///< "measured" on the target or "lut" (predicted)
  double measured_latency_ms = 0;           ///< "lut" front members: measured end to end at the end
  /// Front members of a run with "finetune_front": accuracy after that fine-tune (< 0: none).
  double finetuned_accuracy = -1;
  /// Front members and the baseline: conv/linear layers that run in int8 on the target in its
  /// precision (-1: not known, or the target cannot say).
  int64_t int8_layers = -1;
  bool cached = false;      ///< a copy of an earlier evaluation of the same candidate
  double eval_seconds = 0;  ///< wall time spent on this candidate
  std::string error;        ///< non-empty: the candidate failed (and why)

  bool ok() const { return error.empty(); }
  /// Succeeded and scored by the proxy: counts for the front, best and hypervolume.
  bool scored() const { return ok() && accuracy_source == "proxy"; }
  nlohmann::json to_json() const;
  static Evaluation from_json(const nlohmann::json& j);
};

/// What an evaluation must meet to count as within a run's budget (0 or less: no limit): the
/// budget's absolute limits, relative ones resolved, and its accuracy drop as an accuracy floor.
struct Limits {
  double latency_ms = 0;
  int64_t size_bytes = 0;
  int64_t flops = 0;
  double accuracy_drop = 0;  ///< allowed below baseline_accuracy
  double baseline_accuracy = 0;

  bool any() const { return latency_ms > 0 || size_bytes > 0 || flops > 0 || accuracy_drop > 0; }
  /// How far `e` misses the limits: the largest relative excess over any of them (latency over
  /// its limit / limit, ...; the accuracy's shortfall below the floor / accuracy_drop); 0 when
  /// `e` meets them all, infinity when it failed. Deb's constraint violation.
  double excess(const Evaluation& e) const;
  bool met(const Evaluation& e) const { return excess(e) == 0; }
};

}  // namespace tightfit::search
