// Multi-objective math, map of the file:
//  - non_dominated_sort: Deb et al., "A fast and elitist multiobjective genetic algorithm:
//    NSGA-II" (2002): one pass over all pairs records who dominates whom, then fronts are peeled
//    off by decrementing domination counts.
//  - crowding_distance / crowded_ranking / nsga2_select: the same paper's diversity measure and
//    environmental selection.
//  - hypervolume: the union of the boxes [p, reference]. In 2-D a sweep along the first
//    objective; in 3-D a sweep along the third objective that keeps the 2-D staircase of the
//    points seen so far (each slab between consecutive third-objective values is a prism over
//    that staircase); beyond 3-D, slicing along the last objective until three are left
//    (the dimension-sweep idea of HSO, While et al. 2006). hypervolume_by_slicing slices all the
//    way down to one objective and serves as an independent check.

#include "search/moo.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <numeric>
#include <utility>

#include "core/errors.h"
#include "search/pareto.h"

namespace tightfit::search {

namespace {

using Points = std::vector<std::vector<double>>;

constexpr double kInfinity = std::numeric_limits<double>::infinity();

/// Checks that every point has `dims` finite coordinates.
void check_points(const Points& points, size_t dims, const char* what) {
  for (size_t i = 0; i < points.size(); ++i) {
    TIGHTFIT_CHECK(points[i].size() == dims, what << ": point " << i << " has " << points[i].size()
                                                  << " objectives, expected " << dims);
    for (size_t m = 0; m < dims; ++m)
      TIGHTFIT_CHECK(std::isfinite(points[i][m]),
                     what << ": objective " << m << " of point " << i << " is " << points[i][m]);
  }
}

/// Checks a point set whose dimension is set by its first point; returns that dimension.
size_t check_point_set(const Points& points, const char* what) {
  if (points.empty()) return 0;
  const size_t dims = points.front().size();
  TIGHTFIT_CHECK(dims >= 1, what << ": points need at least one objective");
  check_points(points, dims, what);
  return dims;
}

/// True when a is no worse than b in the first `dims` objectives (equal points included). Unlike
/// `dominates` (search/pareto.h) it needs no strict improvement and looks at a prefix of the
/// objectives: what a slice of the hypervolume needs to drop covered points.
bool weakly_dominates(const std::vector<double>& a, const std::vector<double>& b, size_t dims) {
  for (size_t m = 0; m < dims; ++m)
    if (a[m] > b[m]) return false;
  return true;
}

/// The points strictly better than the reference in every objective; only they enclose volume.
Points strictly_inside(const Points& points, const std::vector<double>& reference) {
  TIGHTFIT_CHECK(!reference.empty(), "hypervolume: the reference point has no objectives");
  for (size_t m = 0; m < reference.size(); ++m)
    TIGHTFIT_CHECK(std::isfinite(reference[m]),
                   "hypervolume: reference objective " << m << " is " << reference[m]);
  check_points(points, reference.size(), "hypervolume");
  Points inside;
  for (const auto& p : points) {
    bool counts = true;
    for (size_t m = 0; m < reference.size() && counts; ++m) counts = p[m] < reference[m];
    if (counts) inside.push_back(p);
  }
  return inside;
}

/// One objective: the segment from the best value to the reference.
double volume_1d(const Points& points, const std::vector<double>& reference) {
  double best = reference[0];
  for (const auto& p : points) best = std::min(best, p[0]);
  return reference[0] - best;
}

/// Objectives 0 and 1: sweep along objective 0; each strip up to the next point's value is as
/// tall as the best objective-1 value seen so far. Dominated points and duplicates fall out.
double volume_2d(const Points& points, const std::vector<double>& reference) {
  std::vector<std::pair<double, double>> xy;
  xy.reserve(points.size());
  for (const auto& p : points) xy.emplace_back(p[0], p[1]);
  std::sort(xy.begin(), xy.end());
  double area = 0, best_y = reference[1];
  for (size_t i = 0; i < xy.size(); ++i) {
    best_y = std::min(best_y, xy[i].second);
    const double next_x = i + 1 < xy.size() ? xy[i + 1].first : reference[0];
    area += (next_x - xy[i].first) * (reference[1] - best_y);
  }
  return area;
}

/// The non-dominated points of a 2-D set, x ascending and y strictly descending, and the area
/// they dominate up to a reference.
class Staircase {
 public:
  /// Adds (x, y) unless a step already weakly dominates it; drops the steps it dominates.
  void insert(double x, double y) {
    auto pos =
        std::lower_bound(steps_.begin(), steps_.end(), x,
                         [](const std::pair<double, double>& s, double v) { return s.first < v; });
    // The last step with a smaller x has the lowest y of all steps left of x.
    if (pos != steps_.begin() && std::prev(pos)->second <= y) return;
    if (pos != steps_.end() && pos->first == x && pos->second <= y) return;
    // Steps right of x (x' >= x) with y' >= y are dominated; y descends, so they are contiguous.
    auto end = pos;
    while (end != steps_.end() && end->second >= y) ++end;
    pos = steps_.erase(pos, end);
    steps_.insert(pos, {x, y});
  }

  double area(double ref_x, double ref_y) const {
    double a = 0;
    for (size_t k = 0; k < steps_.size(); ++k) {
      const double next_x = k + 1 < steps_.size() ? steps_[k + 1].first : ref_x;
      a += (next_x - steps_[k].first) * (ref_y - steps_[k].second);
    }
    return a;
  }

 private:
  std::vector<std::pair<double, double>> steps_;
};

/// Objectives 0, 1 and 2: sweep along objective 2. Between consecutive objective-2 values the
/// dominated region is a prism over the staircase of the points seen so far.
double volume_3d(const Points& points, const std::vector<double>& reference) {
  std::vector<size_t> order(points.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return points[a][2] != points[b][2] ? points[a][2] < points[b][2] : a < b;
  });
  Staircase stairs;
  double volume = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const auto& p = points[order[k]];
    stairs.insert(p[0], p[1]);
    const double next_z = k + 1 < order.size() ? points[order[k + 1]][2] : reference[2];
    // Equal objective-2 values form one slab: add it once all of them are in.
    if (next_z > p[2]) volume += stairs.area(reference[0], reference[1]) * (next_z - p[2]);
  }
  return volume;
}

using BaseVolume = double (*)(const Points&, const std::vector<double>&);

/// Volume in the first `dims` objectives: slice along objective dims-1 until `base_dims` are
/// left, then call `base`. Each slab between consecutive values of the sliced objective is the
/// (dims-1)-volume of the points seen so far times its thickness. Only the non-dominated points
/// of that prefix are passed down, which keeps the recursion small on typical fronts.
double volume_by_slicing(const Points& points, const std::vector<double>& reference, size_t dims,
                         size_t base_dims, BaseVolume base) {
  if (dims == base_dims) return base(points, reference);
  const size_t axis = dims - 1;
  std::vector<size_t> order(points.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return points[a][axis] != points[b][axis] ? points[a][axis] < points[b][axis] : a < b;
  });
  Points prefix;
  double volume = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const auto& p = points[order[k]];
    const bool covered = std::any_of(prefix.begin(), prefix.end(),
                                     [&](const auto& q) { return weakly_dominates(q, p, axis); });
    if (!covered) {
      prefix.erase(std::remove_if(prefix.begin(), prefix.end(),
                                  [&](const auto& q) { return weakly_dominates(p, q, axis); }),
                   prefix.end());
      prefix.push_back(p);
    }
    const double next = k + 1 < order.size() ? points[order[k + 1]][axis] : reference[axis];
    if (next > p[axis])
      volume += volume_by_slicing(prefix, reference, axis, base_dims, base) * (next - p[axis]);
  }
  return volume;
}

}  // namespace

NonDominatedSorting non_dominated_sort(const std::vector<std::vector<double>>& points) {
  check_point_set(points, "non_dominated_sort");
  const size_t n = points.size();
  std::vector<std::vector<size_t>> dominated_by(n);  // dominated_by[i]: the points i dominates
  std::vector<size_t> dominator_count(n, 0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      if (dominates(points[i], points[j])) {
        dominated_by[i].push_back(j);
        ++dominator_count[j];
      } else if (dominates(points[j], points[i])) {
        dominated_by[j].push_back(i);
        ++dominator_count[i];
      }
    }
  }
  NonDominatedSorting out;
  out.rank.assign(n, 0);
  std::vector<size_t> front;
  for (size_t i = 0; i < n; ++i)
    if (dominator_count[i] == 0) front.push_back(i);
  while (!front.empty()) {
    std::vector<size_t> next;
    for (size_t i : front) {
      out.rank[i] = out.fronts.size();
      for (size_t j : dominated_by[i])
        if (--dominator_count[j] == 0) next.push_back(j);
    }
    out.fronts.push_back(std::move(front));
    std::sort(next.begin(), next.end());
    front = std::move(next);
  }
  return out;
}

std::vector<double> crowding_distance(const std::vector<std::vector<double>>& points,
                                      const std::vector<size_t>& front) {
  const size_t dims = check_point_set(points, "crowding_distance");
  std::vector<bool> seen(points.size(), false);
  for (size_t i : front) {
    TIGHTFIT_CHECK(i < points.size(),
                   "crowding_distance: index " << i << " of " << points.size() << " points");
    TIGHTFIT_CHECK(!seen[i], "crowding_distance: point " << i << " is twice in the front");
    seen[i] = true;
  }
  const size_t size = front.size();
  if (size <= 2) return std::vector<double>(size, kInfinity);

  std::vector<double> distance(size, 0.0);
  std::vector<size_t> order(size);  // positions in `front`
  for (size_t m = 0; m < dims; ++m) {
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const double va = points[front[a]][m], vb = points[front[b]][m];
      return va != vb ? va < vb : front[a] < front[b];
    });
    const double lo = points[front[order.front()]][m];
    const double hi = points[front[order.back()]][m];
    if (hi <= lo) continue;  // every member shares this value: no information on spread
    // Ties sort by index, so the lowest index already leads the minimum's group; move it to the
    // end of the maximum's group too, so that one copy of a duplicated extreme is the boundary.
    size_t max_group = size - 1;
    while (points[front[order[max_group - 1]]][m] == hi) --max_group;
    std::rotate(order.begin() + max_group, order.begin() + max_group + 1, order.end());
    const double range = hi - lo;
    distance[order.front()] = kInfinity;
    distance[order.back()] = kInfinity;
    for (size_t k = 1; k + 1 < size; ++k) {
      const double gap = points[front[order[k + 1]]][m] - points[front[order[k - 1]]][m];
      distance[order[k]] += gap / range;
    }
  }
  return distance;
}

CrowdedRanking crowded_ranking(const std::vector<std::vector<double>>& points) {
  const auto sorting = non_dominated_sort(points);
  CrowdedRanking out;
  out.rank = sorting.rank;
  out.crowding.assign(points.size(), 0.0);
  for (const auto& front : sorting.fronts) {
    const auto distance = crowding_distance(points, front);
    for (size_t k = 0; k < front.size(); ++k) out.crowding[front[k]] = distance[k];
  }
  return out;
}

std::vector<size_t> nsga2_select(const std::vector<std::vector<double>>& points, size_t n) {
  TIGHTFIT_CHECK(n <= points.size(),
                 "nsga2_select: " << n << " survivors asked of " << points.size() << " points");
  const auto ranking = crowded_ranking(points);
  std::vector<size_t> order(points.size());
  std::iota(order.begin(), order.end(), 0);
  // Sorting every point by (rank, -crowding, index) and keeping the first n is the same as
  // taking whole fronts while they fit and cutting the next one by crowding distance.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (ranking.rank[a] != ranking.rank[b]) return ranking.rank[a] < ranking.rank[b];
    if (ranking.crowding[a] != ranking.crowding[b])
      return ranking.crowding[a] > ranking.crowding[b];
    return a < b;
  });
  order.resize(n);
  return order;
}

double hypervolume(const std::vector<std::vector<double>>& points,
                   const std::vector<double>& reference) {
  const Points inside = strictly_inside(points, reference);
  if (inside.empty()) return 0.0;
  switch (reference.size()) {
    case 1:
      return volume_1d(inside, reference);
    case 2:
      return volume_2d(inside, reference);
    case 3:
      return volume_3d(inside, reference);
    default:
      return volume_by_slicing(inside, reference, reference.size(), 3, volume_3d);
  }
}

double hypervolume_by_slicing(const std::vector<std::vector<double>>& points,
                              const std::vector<double>& reference) {
  const Points inside = strictly_inside(points, reference);
  if (inside.empty()) return 0.0;
  return volume_by_slicing(inside, reference, reference.size(), 1, volume_1d);
}

ObjectiveBounds objective_bounds(const std::vector<std::vector<double>>& points) {
  TIGHTFIT_CHECK(!points.empty(), "objective_bounds: no points");
  check_point_set(points, "objective_bounds");
  ObjectiveBounds bounds{points.front(), points.front()};
  for (const auto& p : points) {
    for (size_t m = 0; m < p.size(); ++m) {
      bounds.ideal[m] = std::min(bounds.ideal[m], p[m]);
      bounds.nadir[m] = std::max(bounds.nadir[m], p[m]);
    }
  }
  return bounds;
}

std::vector<std::vector<double>> normalize(const std::vector<std::vector<double>>& points,
                                           const ObjectiveBounds& bounds) {
  const size_t dims = bounds.ideal.size();
  TIGHTFIT_CHECK(
      dims >= 1 && bounds.nadir.size() == dims,
      "normalize: bounds have " << dims << " ideal and " << bounds.nadir.size() << " nadir values");
  for (size_t m = 0; m < dims; ++m)
    TIGHTFIT_CHECK(std::isfinite(bounds.ideal[m]) && std::isfinite(bounds.nadir[m]) &&
                       bounds.ideal[m] <= bounds.nadir[m],
                   "normalize: objective " << m << " has ideal " << bounds.ideal[m] << " and nadir "
                                           << bounds.nadir[m]);
  check_points(points, dims, "normalize");
  std::vector<std::vector<double>> out(points.size(), std::vector<double>(dims));
  for (size_t i = 0; i < points.size(); ++i) {
    for (size_t m = 0; m < dims; ++m) {
      const double range = bounds.nadir[m] - bounds.ideal[m];
      out[i][m] = (points[i][m] - bounds.ideal[m]) / (range > 0 ? range : 1.0);
    }
  }
  return out;
}

}  // namespace tightfit::search
