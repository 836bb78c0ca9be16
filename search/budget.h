#pragma once
// Budgets as constraints on evaluations: whether a candidate meets one, by how much it misses,
// and whether anything in the space can meet it at all (checked before the search starts).

#include "search/config.h"
#include "search/evaluation.h"
#include "search/scorer.h"

namespace tightfit::search {

/// True when `e` meets every limit of `b` (`baseline_accuracy` for the accuracy drop).
bool within_budget(const Evaluation& e, const Budget& b, double baseline_accuracy);

/// How far `e` is from meeting `b`: the largest relative excess over any limit (0 when met).
double budget_excess(const Evaluation& e, const Budget& b, double baseline_accuracy);

/// InputError when even the most compressed uniform network of the space misses `budget`'s
/// latency, size or FLOPs (pruning, bits and rank only ever lower them here, so nothing can meet
/// it); costs that network with `scorer`. `budget` is the run's, relative limits resolved.
void check_budget_reachable(const Session& session, CandidateScorer& scorer, const Budget& budget);

}  // namespace tightfit::search
