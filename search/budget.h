#pragma once
// Budgets as constraints on evaluations: whether a candidate meets one, by how much it misses,
// and whether anything in the space can meet it at all (checked before the search starts).

#include "search/config.h"
#include "search/evaluation.h"
#include "search/scorer.h"

namespace tightfit::search {

/// The limits `b` sets on evaluations (its absolute ones: resolve relative ones first), with
/// the accuracy drop below `baseline_accuracy`.
Limits limits_of(const Budget& b, double baseline_accuracy);

/// True when `e` succeeded and meets every limit of `b` (`baseline_accuracy` for the accuracy
/// drop).
bool within_budget(const Evaluation& e, const Budget& b, double baseline_accuracy);

/// InputError when even the most compressed uniform network of the space misses `budget`'s
/// latency, size or FLOPs (pruning, bits and rank only ever lower them here, so nothing can meet
/// it); costs that network with `scorer`. `budget` is the run's, relative limits resolved.
void check_budget_reachable(const Session& session, CandidateScorer& scorer, const Budget& budget);

}  // namespace tightfit::search
