#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>

#include "core/errors.h"
#include "search/moo.h"
#include "search/pareto.h"

using namespace tightfit;
using Points = std::vector<std::vector<double>>;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Exact union volume by inclusion-exclusion over every non-empty subset (2^N terms): the boxes
/// [p, reference] of a subset intersect in the box [component-wise max of the subset, reference].
/// Shares nothing with search/moo.cpp.
double inclusion_exclusion(const Points& points, const std::vector<double>& reference) {
  Points inside;
  for (const auto& p : points) {
    bool ok = true;
    for (size_t m = 0; m < reference.size(); ++m) ok = ok && p[m] < reference[m];
    if (ok) inside.push_back(p);
  }
  REQUIRE(inside.size() <= 16);
  double volume = 0;
  for (uint32_t mask = 1; mask < (1u << inside.size()); ++mask) {
    std::vector<double> corner(reference.size(), -kInf);
    int members = 0;
    for (size_t i = 0; i < inside.size(); ++i) {
      if (!(mask & (1u << i))) continue;
      ++members;
      for (size_t m = 0; m < reference.size(); ++m) corner[m] = std::max(corner[m], inside[i][m]);
    }
    double box = 1;
    for (size_t m = 0; m < reference.size(); ++m) box *= reference[m] - corner[m];
    volume += members % 2 == 1 ? box : -box;
  }
  return volume;
}

/// `n` points in `dims` objectives: on the integer grid 0..5 (many ties and duplicates) or
/// uniform in [0, 6). With a reference of 5 everywhere, some points sit on or beyond it.
Points random_points(std::mt19937_64& rng, size_t n, size_t dims, bool grid) {
  std::uniform_int_distribution<int> integer(0, 5);
  std::uniform_real_distribution<double> real(0.0, 6.0);
  Points points(n, std::vector<double>(dims));
  for (auto& p : points)
    for (auto& v : p) v = grid ? integer(rng) : real(rng);
  return points;
}

/// Approx that tolerates the different summation orders of two exact algorithms.
Approx exact(double value) { return Approx(value).epsilon(1e-10).margin(1e-10); }

}  // namespace

TEST_CASE("non_dominated_sort peels a hand-made 2-D set into its known fronts", "[search][moo]") {
  const Points points = {
      {8, 8},  // 0: beaten by (6,6) -> front 3
      {2, 5},  // 1: front 0
      {5, 5},  // 2: beaten by (4,4), (2,5) -> front 1
      {1, 8},  // 3: front 0
      {6, 6},  // 4: beaten by (5,5) of front 1 -> front 2
      {7, 3},  // 5: beaten by (6,2) -> front 1
      {4, 4},  // 6: front 0
      {3, 7},  // 7: beaten by (2,5) -> front 1
      {6, 2},  // 8: front 0
      {2, 5},  // 9: duplicate of 1: duplicates do not dominate each other -> front 0
  };
  const auto sorting = search::non_dominated_sort(points);
  CHECK(sorting.fronts == std::vector<std::vector<size_t>>{{1, 3, 6, 8, 9}, {2, 5, 7}, {4}, {0}});
  CHECK(sorting.rank == std::vector<size_t>{3, 0, 1, 0, 2, 1, 0, 1, 0, 0});
  // Front 0 is exactly what pareto.h's non_dominated finds.
  CHECK(sorting.fronts[0] == search::non_dominated(points));

  CHECK(search::non_dominated_sort({}).fronts.empty());
  const auto single = search::non_dominated_sort({{3, 1, 2}});
  CHECK(single.fronts == std::vector<std::vector<size_t>>{{0}});
}

TEST_CASE("non_dominated_sort satisfies the definition of fronts on random sets", "[search][moo]") {
  std::mt19937_64 rng(20240611);
  for (int trial = 0; trial < 60; ++trial) {
    const size_t dims = 2 + trial % 3, n = 1 + trial % 25;
    const Points points = random_points(rng, n, dims, trial % 2 == 0);
    const auto sorting = search::non_dominated_sort(points);
    REQUIRE(sorting.rank.size() == n);
    // The fronts partition the points, ascending within a front, consistent with rank.
    std::set<size_t> seen;
    for (size_t k = 0; k < sorting.fronts.size(); ++k) {
      REQUIRE_FALSE(sorting.fronts[k].empty());
      CHECK(std::is_sorted(sorting.fronts[k].begin(), sorting.fronts[k].end()));
      for (size_t i : sorting.fronts[k]) {
        CHECK(sorting.rank[i] == k);
        CHECK(seen.insert(i).second);
      }
    }
    CHECK(seen.size() == n);
    for (size_t p = 0; p < n; ++p) {
      bool beaten_by_previous_front = sorting.rank[p] == 0;
      for (size_t q = 0; q < n; ++q) {
        if (!search::dominates(points[q], points[p])) continue;
        CHECK(sorting.rank[q] < sorting.rank[p]);  // nothing in a later or the same front beats p
        if (sorting.rank[q] + 1 == sorting.rank[p]) beaten_by_previous_front = true;
      }
      CHECK(beaten_by_previous_front);  // p is in the first front where nothing beats it
    }
  }
}

TEST_CASE("crowding_distance of a 4-point front, worked by hand", "[search][moo]") {
  // Members A(0,20) B(2,12) C(5,6) D(10,0), stored out of order among two non-members.
  // Objective 0, sorted A B C D, range 10: A, D boundary (inf);
  //   B: (C - A) / 10 = (5 - 0) / 10 = 0.5      C: (D - B) / 10 = (10 - 2) / 10 = 0.8
  // Objective 1, sorted D C B A, range 20: D, A boundary (inf);
  //   C: (B - D) / 20 = (12 - 0) / 20 = 0.6     B: (A - C) / 20 = (20 - 6) / 20 = 0.7
  // B = 0.5 + 0.7 = 1.2, C = 0.8 + 0.6 = 1.4. Without the division by the range, objective 1
  // would weigh twice as much and B, C would get 1.9, 2.0.
  const Points points = {{99, 99}, {2, 12}, {10, 0}, {50, 50}, {0, 20}, {5, 6}};
  const std::vector<size_t> front = {5, 2, 1, 4};  // C D B A
  const auto d = search::crowding_distance(points, front);
  REQUIRE(d.size() == 4);
  CHECK(d[0] == Approx(1.4));
  CHECK(d[1] == kInf);
  CHECK(d[2] == Approx(1.2));
  CHECK(d[3] == kInf);

  SECTION("an objective with zero range adds nothing") {
    Points flat = points;
    for (auto& p : flat) p.push_back(7.0);
    const auto d3 = search::crowding_distance(flat, front);
    CHECK(d3[0] == Approx(1.4));
    CHECK(d3[2] == Approx(1.2));
    CHECK(d3[1] == kInf);
    // All objectives flat: nobody is a boundary.
    const Points same(3, {1.0, 2.0});
    CHECK(search::crowding_distance(same, {0, 1, 2}) == std::vector<double>{0, 0, 0});
  }
  SECTION("in 3-D every objective has its own boundaries") {
    // a(0,3,1) b(1,0,2) c(2,1,3) d(3,2,1.5) e(1.5,1.5,1.8); d is extreme only in objective 0.
    // Objective 0, order a b e c d, range 3: a, d inf; b .5; e (2-1)/3 = 1/3; c .5
    // Objective 1, order b c e d a, range 3: b, a inf; c .5; e (2-1)/3 = 1/3; d .5
    // Objective 2, order a d e b c, range 2: a, c inf; d .4; e (2-1.5)/2 = .25; b .6
    // -> a, b, c, d inf; e = 1/3 + 1/3 + 1/4 = 11/12.
    const Points p3 = {{0, 3, 1}, {1, 0, 2}, {2, 1, 3}, {3, 2, 1.5}, {1.5, 1.5, 1.8}};
    const auto d5 = search::crowding_distance(p3, {0, 1, 2, 3, 4});
    CHECK(d5 == std::vector<double>{kInf, kInf, kInf, kInf, d5[4]});
    CHECK(d5[4] == Approx(11.0 / 12));
  }
  SECTION("fronts of one or two members are all boundary") {
    CHECK(search::crowding_distance(points, {3}) == std::vector<double>{kInf});
    CHECK(search::crowding_distance(points, {1, 5}) == std::vector<double>{kInf, kInf});
    CHECK(search::crowding_distance(points, {}).empty());
  }
  SECTION("of duplicates at a boundary only the lowest index is the boundary") {
    // Points 0 and 1 are copies at the low end of objective 0 and the high end of objective 1.
    // Objective 0, order 0 1 2 3 (values 0 0 1 2), range 2: 0, 3 inf; 1: (1-0)/2 = .5;
    //   2: (2-0)/2 = 1.
    // Objective 1, order 3 2 1 0 (values 0 1 2 2; copy 0 is the boundary), range 2: 3, 0 inf;
    //   2: (2-0)/2 = 1;  1: (2-1)/2 = .5.
    // -> 0 inf, 1 1.0, 2 2.0, 3 inf: the second copy is interior, not a second boundary.
    const Points dup = {{0, 2}, {0, 2}, {1, 1}, {2, 0}};
    const auto dd = search::crowding_distance(dup, {0, 1, 2, 3});
    CHECK(dd[0] == kInf);
    CHECK(dd[1] == Approx(1.0));
    CHECK(dd[2] == Approx(2.0));
    CHECK(dd[3] == kInf);
    // Three copies: objective 0, order 0 1 2 3 4 (values 0 0 0 1 2): 1: 0, 2: .5, 3: 1;
    // objective 1, order 4 3 1 2 0 (values 0 1 2 2 2): 3: 1, 1: .5, 2: 0.
    const Points dup3 = {{0, 2}, {0, 2}, {0, 2}, {1, 1}, {2, 0}};
    const auto d5 = search::crowding_distance(dup3, {0, 1, 2, 3, 4});
    CHECK(d5[0] == kInf);
    CHECK(d5[1] == Approx(0.5));
    CHECK(d5[2] == Approx(0.5));
    CHECK(d5[3] == Approx(2.0));
    CHECK(d5[4] == kInf);
  }
  SECTION("bad fronts are bugs") {
    CHECK_THROWS_AS(search::crowding_distance(points, {1, 6}), InternalError);
    CHECK_THROWS_AS(search::crowding_distance(points, {1, 2, 1}), InternalError);
  }
}

TEST_CASE("hypervolume in 2-D by hand", "[search][moo][hypervolume]") {
  // Strips along objective 0: [1,2) x (4-3) + [2,3) x (4-2) + [3,4) x (4-1) = 1 + 2 + 3 = 6.
  const Points points = {{1, 3}, {2, 2}, {3, 1}};
  CHECK(search::hypervolume(points, {4, 4}) == Approx(6.0));
  CHECK(search::hypervolume_by_slicing(points, {4, 4}) == Approx(6.0));

  SECTION("points on or beyond the reference are ignored") {
    Points more = points;
    more.push_back({5, 0});   // beyond in objective 0
    more.push_back({-1, 5});  // beyond in objective 1
    more.push_back({0, 4});   // on the reference in objective 1
    more.push_back({4, 4});   // the reference itself
    CHECK(search::hypervolume(more, {4, 4}) == Approx(6.0));
    CHECK(search::hypervolume_by_slicing(more, {4, 4}) == Approx(6.0));
  }
  SECTION("duplicates and dominated points are counted once") {
    const Points more = {{3, 1}, {1, 3}, {2, 2}, {2, 2}, {1, 3}, {3, 3}, {2, 3.5}};
    CHECK(search::hypervolume(more, {4, 4}) == Approx(6.0));
    CHECK(search::hypervolume_by_slicing(more, {4, 4}) == Approx(6.0));
  }
  SECTION("no point inside gives 0") {
    CHECK(search::hypervolume({}, {4, 4}) == 0.0);
    CHECK(search::hypervolume({{4, 1}, {5, 5}}, {4, 4}) == 0.0);
  }
}

TEST_CASE("hypervolume in 3-D by hand", "[search][moo][hypervolume]") {
  // Boxes up to r = (4,4,4):  a = (1,2,3): 3*2*1 = 6   b = (2,1,3): 2*3*1 = 6
  //                           c = (3,3,1): 1*1*3 = 3
  // Pairwise intersections (corner = component-wise max):
  //   a^b = (2,2,3): 2*2*1 = 4   a^c = (3,3,3): 1*1*1 = 1   b^c = (3,3,3): 1
  //   a^b^c = (3,3,3): 1
  // Union = 6 + 6 + 3 - 4 - 1 - 1 + 1 = 10.
  // (Sweep check: z in [1,3) only c: area 1 * 1 -> 2;  z in [3,4): staircase (1,2) (2,1), c's
  // (3,3) dominated: area 1*2 + 2*3 = 8 -> 8;  total 10.)
  const Points points = {{1, 2, 3}, {2, 1, 3}, {3, 3, 1}};
  const std::vector<double> ref = {4, 4, 4};
  CHECK(search::hypervolume(points, ref) == Approx(10.0));
  CHECK(search::hypervolume_by_slicing(points, ref) == Approx(10.0));
  CHECK(inclusion_exclusion(points, ref) == Approx(10.0));

  // A duplicate, a dominated point and one beyond the reference change nothing.
  Points more = points;
  more.push_back({2, 1, 3});
  more.push_back({3, 3, 3});
  more.push_back({0, 0, 4.5});
  CHECK(search::hypervolume(more, ref) == Approx(10.0));
  CHECK(search::hypervolume_by_slicing(more, ref) == Approx(10.0));
}

TEST_CASE("hypervolume of a single point is the product of its gaps",
          "[search][moo][hypervolume]") {
  CHECK(search::hypervolume({{1.5}}, {4}) == Approx(2.5));
  CHECK(search::hypervolume({{1, 2}}, {2, 5}) == Approx(3.0));
  CHECK(search::hypervolume({{1, 2, 3}}, {2, 4, 7}) == Approx(1 * 2 * 4));
  CHECK(search::hypervolume({{1, 2, 3, 0.5}}, {2, 4, 7, 1}) == Approx(1 * 2 * 4 * 0.5));
  CHECK(search::hypervolume({{-1, 0, 1, 2, 3}}, {0, 2, 2, 3, 6}) == Approx(1 * 2 * 1 * 1 * 3));
  CHECK(search::hypervolume_by_slicing({{1, 2, 3, 0.5}}, {2, 4, 7, 1}) == Approx(4.0));
}

TEST_CASE("the general slicing algorithm agrees with the 2-D and 3-D sweeps on random sets",
          "[search][moo][hypervolume]") {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 100; ++trial) {
    const size_t dims = 2 + trial % 2, n = 1 + (trial * 7) % 40;
    const bool grid = trial % 4 < 2;
    const Points points = random_points(rng, n, dims, grid);
    const std::vector<double> ref(dims, 5.0);
    const double sweep = search::hypervolume(points, ref);
    INFO("trial " << trial << ", " << n << " points in " << dims << "-D");
    CHECK(sweep == exact(search::hypervolume_by_slicing(points, ref)));
    if (n <= 12) CHECK(sweep == exact(inclusion_exclusion(points, ref)));
  }
}

TEST_CASE("hypervolume in 4-D and 5-D matches inclusion-exclusion and Monte Carlo",
          "[search][moo][hypervolume]") {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    const size_t dims = 4 + trial % 2, n = 1 + trial % 12;
    const Points points = random_points(rng, n, dims, trial % 3 == 0);
    const std::vector<double> ref(dims, 5.0);
    INFO("trial " << trial << ", " << n << " points in " << dims << "-D");
    const double hv = search::hypervolume(points, ref);
    CHECK(hv == exact(inclusion_exclusion(points, ref)));
    CHECK(hv == exact(search::hypervolume_by_slicing(points, ref)));
  }

  // Monte Carlo in the unit box: the fraction of uniform samples some point weakly dominates.
  // 200000 samples: standard error <= 0.5 / sqrt(200000) ~ 0.0011; tolerance ~4.5 of them.
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  Points points(12, std::vector<double>(4));
  for (auto& p : points)
    for (auto& v : p) v = unit(rng);
  const std::vector<double> ref(4, 1.0);
  const double hv = search::hypervolume(points, ref);
  constexpr int kSamples = 200000;
  int hits = 0;
  std::vector<double> s(4);
  for (int k = 0; k < kSamples; ++k) {
    for (auto& v : s) v = unit(rng);
    for (const auto& p : points) {
      if (p[0] <= s[0] && p[1] <= s[1] && p[2] <= s[2] && p[3] <= s[3]) {
        ++hits;
        break;
      }
    }
  }
  const double estimate = static_cast<double>(hits) / kSamples;
  INFO("exact " << hv << ", Monte Carlo " << estimate);
  CHECK(hv > 0.05);
  CHECK(std::abs(hv - estimate) < 0.005);
}

TEST_CASE("nsga2_select keeps whole fronts and cuts the last by crowding", "[search][moo]") {
  // The set of the sorting test. Front 0 = {1,3,6,8,9}, front 1 = {2,5,7}, front 2 = {4},
  // front 3 = {0}.
  // Crowding in front 0, points 1(2,5) 3(1,8) 6(4,4) 8(6,2) 9(2,5):
  //   objective 0 sorted 3 1 9 6 8, range 5: 3, 8 inf; 1: (2-1)/5 = .2; 9: (4-2)/5 = .4;
  //     6: (6-2)/5 = .8
  //   objective 1 sorted 8 6 1 9 3, range 6: 8, 3 inf; 6: (5-2)/6 = .5; 1: (5-4)/6 = .1667;
  //     9: (8-5)/6 = .5
  //   -> 3 inf, 8 inf, 6 1.3, 9 0.9, 1 0.3667
  // Crowding in front 1, points 2(5,5) 5(7,3) 7(3,7): 5 and 7 are boundaries (inf),
  //   2: (7-3)/4 + (7-3)/4 = 2.
  const Points points = {{8, 8}, {2, 5}, {5, 5}, {1, 8}, {6, 6},
                         {7, 3}, {4, 4}, {3, 7}, {6, 2}, {2, 5}};
  const auto ranking = search::crowded_ranking(points);
  CHECK(ranking.crowding[6] == Approx(1.3));
  CHECK(ranking.crowding[9] == Approx(0.9));
  CHECK(ranking.crowding[1] == Approx(0.2 + 1.0 / 6));
  CHECK(ranking.crowding[2] == Approx(2.0));
  CHECK(ranking.crowding[3] == kInf);

  // 6 survivors: all of front 0, then of front 1 the boundary with the lower index (5 before 7).
  CHECK(search::nsga2_select(points, 6) == std::vector<size_t>{3, 8, 6, 9, 1, 5});
  CHECK(search::nsga2_select(points, 7) == std::vector<size_t>{3, 8, 6, 9, 1, 5, 7});
  CHECK(search::nsga2_select(points, 8) == std::vector<size_t>{3, 8, 6, 9, 1, 5, 7, 2});
  CHECK(search::nsga2_select(points, 3) == std::vector<size_t>{3, 8, 6});
  CHECK(search::nsga2_select(points, 10) == std::vector<size_t>{3, 8, 6, 9, 1, 5, 7, 2, 4, 0});
  CHECK(search::nsga2_select(points, 0).empty());
  CHECK_THROWS_AS(search::nsga2_select(points, 11), InternalError);
}

TEST_CASE("normalize maps the bounds to [0, 1] and makes hypervolumes unit-free", "[search][moo]") {
  // Objectives: (-accuracy, latency_ms).
  const Points front = {{-0.9, 30}, {-0.7, 10}, {-0.8, 20}};
  const auto bounds = search::objective_bounds(front);
  CHECK(bounds.ideal == std::vector<double>{-0.9, 10});
  CHECK(bounds.nadir == std::vector<double>{-0.7, 30});
  const auto unit = search::normalize(front, bounds);
  REQUIRE(unit.size() == 3);
  CHECK(unit[0][0] == Approx(0.0));
  CHECK(unit[0][1] == Approx(1.0));
  CHECK(unit[1][0] == Approx(1.0));
  CHECK(unit[1][1] == Approx(0.0));
  CHECK(unit[2][0] == Approx(0.5));
  CHECK(unit[2][1] == Approx(0.5));

  // Outside the bounds: not clamped.
  const auto outside = search::normalize({{-0.6, 40}}, bounds);
  CHECK(outside[0][0] == Approx(1.5));
  CHECK(outside[0][1] == Approx(1.5));

  // Zero range: only shifted.
  const auto flat = search::normalize({{3, 1}, {3, 2}}, {{3, 1}, {3, 2}});
  CHECK(flat[0][0] == 0.0);
  CHECK(flat[1][0] == 0.0);
  CHECK(flat[1][1] == Approx(1.0));

  // The same front in microseconds, with bounds in microseconds, has the same normalized
  // hypervolume.
  Points front_us = front;
  for (auto& p : front_us) p[1] *= 1000;
  const std::vector<double> ref(2, search::kNormalizedReference);
  const double hv_ms = search::hypervolume(unit, ref);
  const double hv_us =
      search::hypervolume(search::normalize(front_us, search::objective_bounds(front_us)), ref);
  // Strips: [0,0.5) x (1.1-1) + [0.5,1) x (1.1-0.5) + [1,1.1) x (1.1-0) = 0.05 + 0.3 + 0.11.
  CHECK(hv_ms == Approx(0.46));
  CHECK(hv_us == Approx(hv_ms));

  CHECK_THROWS_AS(search::objective_bounds({}), InternalError);
  CHECK_THROWS_AS(search::normalize(front, {{0, 0}, {1}}), InternalError);
  CHECK_THROWS_AS(search::normalize(front, {{0, 5}, {1, 4}}), InternalError);  // ideal > nadir
}

TEST_CASE("NaN, infinities and mismatched sizes are rejected as bugs", "[search][moo]") {
  const Points nan_point = {{1, 2}, {kNaN, 1}};
  CHECK_THROWS_AS(search::non_dominated_sort(nan_point), InternalError);
  CHECK_THROWS_AS(search::crowding_distance(nan_point, {0, 1}), InternalError);
  CHECK_THROWS_AS(search::nsga2_select(nan_point, 1), InternalError);
  CHECK_THROWS_AS(search::hypervolume(nan_point, {4, 4}), InternalError);
  CHECK_THROWS_AS(search::hypervolume_by_slicing(nan_point, {4, 4}), InternalError);
  CHECK_THROWS_AS(search::hypervolume({{1, 2}}, {kNaN, 4}), InternalError);
  CHECK_THROWS_AS(search::hypervolume({{1, 2}}, {kInf, 4}), InternalError);
  CHECK_THROWS_AS(search::hypervolume({{1, -kInf}}, {4, 4}), InternalError);
  CHECK_THROWS_AS(search::normalize(nan_point, {{0, 0}, {1, 1}}), InternalError);
  CHECK_THROWS_AS(search::objective_bounds(nan_point), InternalError);

  CHECK_THROWS_AS(search::non_dominated_sort({{1, 2}, {1, 2, 3}}), InternalError);
  CHECK_THROWS_AS(search::non_dominated_sort({{}, {}}), InternalError);
  CHECK_THROWS_AS(search::hypervolume({{1, 2, 3}}, {4, 4}), InternalError);
  CHECK_THROWS_AS(search::hypervolume({}, {}), InternalError);
}
