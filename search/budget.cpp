#include "search/budget.h"

#include <algorithm>

#include "core/errors.h"

namespace tightfit::search {

bool within_budget(const Evaluation& e, const Budget& b, double baseline_accuracy) {
  return e.ok() && (b.latency_ms <= 0 || e.latency_ms <= b.latency_ms) &&
         (b.size_bytes <= 0 || e.size_bytes <= b.size_bytes) &&
         (b.flops <= 0 || e.flops <= b.flops) &&
         (b.accuracy_drop <= 0 || baseline_accuracy - e.accuracy <= b.accuracy_drop);
}

double budget_excess(const Evaluation& e, const Budget& b, double baseline_accuracy) {
  double worst = 0;
  auto over = [&](double value, double limit) {
    if (limit > 0) worst = std::max(worst, (value - limit) / limit);
  };
  over(e.latency_ms, b.latency_ms);
  over(static_cast<double>(e.size_bytes), static_cast<double>(b.size_bytes));
  over(static_cast<double>(e.flops), static_cast<double>(b.flops));
  if (b.accuracy_drop > 0)
    worst = std::max(worst, (baseline_accuracy - e.accuracy - b.accuracy_drop) / b.accuracy_drop);
  return worst;
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
