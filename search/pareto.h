#pragma once
// Pareto dominance over objectives that are all minimized (negate what should be maximized).

#include <cstddef>
#include <vector>

namespace tightfit::search {

/// True when a is no worse than b in every objective and better in at least one.
bool dominates(const std::vector<double>& a, const std::vector<double>& b);

/// Indices of the points no other point dominates, in input order. Exact duplicates are all kept.
std::vector<size_t> non_dominated(const std::vector<std::vector<double>>& points);

}  // namespace tightfit::search
