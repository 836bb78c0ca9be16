#pragma once
// The Pareto front of a search and what happens to it once the loop ends: each member compressed
// once, measured end to end on the target when the search predicted its latency, optionally
// fine-tuned (with the proxy's rank agreement against the fine-tuned accuracies), and written as a
// network file.

#include <cstddef>
#include <string>
#include <vector>

#include "search/evaluation.h"
#include "search/session.h"

namespace tightfit::search {

struct SearchResult;

/// Indices of the non-dominated successful evaluations over (accuracy up, latency down, size
/// down), sorted by latency.
std::vector<size_t> pareto_front(const std::vector<Evaluation>& evaluations);

/// Sets `result.front` and finishes its members: measured (predicted latency only), fine-tuned
/// (config "finetune_front"; context "front_fidelity"), written to `dir`/models/INDEX.tfn.
void finalize_front(const Session& session, SearchResult& result, const std::string& dir,
                    const Say& say);

}  // namespace tightfit::search
