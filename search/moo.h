#pragma once
// Multi-objective math for the search strategies and the reports: NSGA-II's non-dominated sorting,
// crowding distance and environmental selection, the exact dominated hypervolume, and the
// normalization that makes hypervolumes of different runs comparable. Pure functions on objective
// vectors; plain dominance tests (`dominates`, `non_dominated`) live in search/pareto.h.
//
// Conventions shared by every function here:
//  - Every objective is minimized (negate what should be maximized, e.g. -accuracy).
//  - A point set is `std::vector<std::vector<double>>`; all points have the same number M >= 1 of
//    objectives. Indices always refer to positions in that vector.
//  - Values must be finite. NaN or +-infinity, mismatched sizes and out-of-range indices are bugs
//    of the caller (failed candidates are filtered out before they get here, see
//    Evaluation::ok()), so they throw InternalError through TIGHTFIT_CHECK. Callers that take a
//    reference point or bounds from a user's config validate them first and raise ConfigError.
//  - Ties are broken by index, so every result is a deterministic function of the input.

#include <cstddef>
#include <vector>

namespace tightfit::search {

/// Fronts and ranks of a point set, as NSGA-II's non-dominated sorting defines them.
struct NonDominatedSorting {
  /// fronts[0] holds the points nothing dominates, fronts[k] those nothing outside fronts[0..k-1]
  /// dominates. Indices ascend within a front; every point is in exactly one front.
  std::vector<std::vector<size_t>> fronts;
  /// rank[i] is the front of point i.
  std::vector<size_t> rank;
};

/// Deb's fast non-dominated sorting (NSGA-II). Exact duplicates do not dominate each other, so
/// they share a front. O(M N^2) time, O(N^2) memory in the worst case.
NonDominatedSorting non_dominated_sort(const std::vector<std::vector<double>>& points);

/// NSGA-II crowding distance of the members of one front (`front` holds indices into `points`,
/// each at most once; it is usually one of NonDominatedSorting::fronts but need not be).
/// Returns one distance per member, in the order of `front`. Per objective the members are
/// sorted by value (ties by index); the first and last get +infinity, every other member adds
/// (next - previous) / (max - min) of its neighbours in that order. An objective whose values
/// are all equal adds 0 to every member, boundaries included. Members of a front of one or two
/// points are all boundaries: +infinity. Of members tied at the minimum or the maximum of an
/// objective only the lowest index is that boundary, so selection does not favour copies of an
/// extreme point.
/// O(M F log F) for a front of F members.
std::vector<double> crowding_distance(const std::vector<std::vector<double>>& points,
                                      const std::vector<size_t>& front);

/// Rank and crowding distance (within its front) of every point: what NSGA-II's crowded
/// comparison and binary tournaments compare. O(M N^2).
struct CrowdedRanking {
  std::vector<size_t> rank;
  std::vector<double> crowding;
};
CrowdedRanking crowded_ranking(const std::vector<std::vector<double>>& points);

/// NSGA-II environmental selection: the indices of the `n` best points (n <= points.size()),
/// ordered by rank ascending, then crowding distance descending, then index ascending. Whole
/// fronts survive while they fit; the front that overflows is cut by crowding distance.
/// O(M N^2).
std::vector<size_t> nsga2_select(const std::vector<std::vector<double>>& points, size_t n);

/// Exact hypervolume dominated by `points` and bounded by `reference` (minimization): the
/// Lebesgue measure of the union of the boxes [p, reference]. Only points strictly better than
/// the reference in every objective contribute; the others are ignored. Duplicates and
/// dominated points change nothing (the union counts each region once). An empty set gives 0.
/// Algorithms: M = 1 trivial; M = 2 a sweep, O(N log N); M = 3 a sweep over the third objective
/// keeping the 2-D staircase of the slice, O(N^2); M >= 4 slices along the last objectives
/// down to that 3-D sweep, O(N^(M-1)) — fine for the fronts of a search (hundreds of points,
/// M <= 4).
double hypervolume(const std::vector<std::vector<double>>& points,
                   const std::vector<double>& reference);

/// The same hypervolume by plain dimension slicing (HSO-like) down to one objective, for any M.
/// It shares no base case with hypervolume(), which is why it is public: tests cross-check the
/// two. Roughly O(N^M); use it for small sets only.
double hypervolume_by_slicing(const std::vector<std::vector<double>>& points,
                              const std::vector<double>& reference);

/// Per-objective bounds used to normalize: ideal[m] <= nadir[m].
struct ObjectiveBounds {
  std::vector<double> ideal;  ///< best (lowest) value of each objective
  std::vector<double> nadir;  ///< worst (highest) value of each objective
};

/// Component-wise minimum and maximum of a non-empty point set.
ObjectiveBounds objective_bounds(const std::vector<std::vector<double>>& points);

/// Maps each objective affinely so that ideal -> 0 and nadir -> 1: (x - ideal) / (nadir - ideal).
/// Points inside the bounds land in [0, 1]; points outside are not clamped, so the reference
/// point of a later hypervolume decides whether they count. An objective with ideal == nadir is
/// only shifted (x - ideal), so points at that shared value map to 0.
///
/// How the search bench compares strategies: within one comparison (same model, budget, target
/// and objectives; all strategies and seeds), fix the bounds ONCE — from problem knowledge
/// (accuracy error in [0, 1], latency in [0, baseline latency]) or as objective_bounds() of the
/// union of every run's final front — normalize every run's front with those same bounds, and
/// report hypervolume(normalized, reference) with every reference coordinate equal to
/// kNormalizedReference. Bounds taken per run would rescale each run differently and make the
/// numbers incomparable.
std::vector<std::vector<double>> normalize(const std::vector<std::vector<double>>& points,
                                           const ObjectiveBounds& bounds);

/// Reference coordinate for hypervolumes of normalized fronts: slightly beyond the nadir (1) so
/// that the extreme points of a front still contribute a slab.
inline constexpr double kNormalizedReference = 1.1;

}  // namespace tightfit::search
