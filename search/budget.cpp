#include "search/budget.h"

#include <algorithm>

#include "core/errors.h"

namespace tightfit::search {

Limits limits_of(const Budget& b, double baseline_accuracy) {
  Limits l;
  l.latency_ms = b.latency_ms;
  l.size_bytes = b.size_bytes;
  l.flops = b.flops;
  l.accuracy_drop = b.accuracy_drop;
  l.baseline_accuracy = baseline_accuracy;
  return l;
}

bool within_budget(const Evaluation& e, const Budget& b, double baseline_accuracy) {
  return limits_of(b, baseline_accuracy).met(e);
}

void check_budget_reachable(const Session& session, CandidateScorer& scorer, const Budget& budget) {
  if (budget.latency_ms <= 0 && budget.size_bytes <= 0 && budget.flops <= 0) return;
  const auto& keep = session.config.space.keep;
  const auto& bits = session.config.space.weight_bits;
  const auto smallest = session.space.uniform(*std::min_element(keep.begin(), keep.end()),
                                              *std::min_element(bits.begin(), bits.end()));
  Evaluation e;  // cost only: the accuracy drop is not part of this check
  policies::CompressedNetwork candidate;
  scorer.cost(smallest, e, candidate);
  Budget cost_only = budget;
  cost_only.accuracy_drop = 0;
  if (e.ok() && !within_budget(e, cost_only, 0))
    throw InputError("the budget " + cost_only.to_json().dump() +
                     " cannot be met: the most compressed network of this space needs latency " +
                     std::to_string(e.latency_ms) + " ms, " + std::to_string(e.size_bytes) +
                     " bytes, " + std::to_string(e.flops) +
                     " FLOPs; relax the budget or widen the space");
}

}  // namespace tightfit::search
