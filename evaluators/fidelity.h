#pragma once
// Proxy fidelity: how well a cheap accuracy proxy (BN-recalibrated subset accuracy, a PruningNet,
// a learned predictor) ranks candidates the way their true accuracy does. A search only needs the
// order to be right, so the statistics are rank correlations: Kendall's tau-b (pairs ordered
// alike minus pairs ordered oppositely, corrected for ties) and Spearman's rho (the Pearson
// correlation of the ranks). Both are in [-1, 1]: 1 for the same order, -1 for the reverse.
//
// A constant input (every candidate scored alike) has no order; the statistics are then NaN, which
// to_json writes as null and callers print as "n/a". The statistics are core/stats.h's; the
// functions here add the checks of a user's scores (InputError with what to fix).

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

namespace tightfit::evaluators {

/// 1-based ranks of `x` in ascending order; tied values share the mean of the ranks they span
/// (so {10, 20, 20, 30} -> {1, 2.5, 2.5, 4}). Throws InputError for a NaN or infinite value.
std::vector<double> average_ranks(const std::vector<double>& x);

/// Kendall's tau-b of the pairs (x[i], y[i]): (C - D) / sqrt((n0 - n1) (n0 - n2)), with C and D
/// the concordant and discordant pairs, n0 = n (n - 1) / 2 and n1, n2 the pairs tied in x and in
/// y. O(n^2). Returns NaN when x or y is constant. Throws InputError when the lengths differ,
/// there are fewer than 2 points, or a value is not finite.
double kendall_tau(const std::vector<double>& x, const std::vector<double>& y);

/// Spearman's rho: the Pearson correlation of average_ranks(x) and average_ranks(y). Returns NaN
/// when x or y is constant; throws InputError as kendall_tau does.
double spearman_rho(const std::vector<double>& x, const std::vector<double>& y);

/// Rank agreement of a proxy with a reference, for reports.
struct RankAgreement {
  double kendall_tau = std::numeric_limits<double>::quiet_NaN();   ///< NaN: undefined
  double spearman_rho = std::numeric_limits<double>::quiet_NaN();  ///< NaN: undefined
  int64_t n = 0;                                                   ///< points compared

  /// {"kendall_tau", "spearman_rho", "n"}; an undefined statistic is written as null.
  nlohmann::json to_json() const;
};

/// Both statistics of (x[i], y[i]); throws InputError as kendall_tau does.
RankAgreement rank_agreement(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace tightfit::evaluators
