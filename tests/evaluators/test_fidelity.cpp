// Proxy-fidelity statistics: average ranks, Kendall's tau-b and Spearman's rho against values
// worked out by hand (no ties, ties in one list, ties in both, a pair tied in both), perfect and
// reversed agreement, invariance to monotone transforms, NaN for a constant list, and the user
// mistakes (lengths differ, fewer than 2 points, non-finite values) as InputErrors.

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "core/errors.h"
#include "evaluators/fidelity.h"

using Catch::Matchers::Contains;
using tightfit::InputError;
using tightfit::evaluators::average_ranks;
using tightfit::evaluators::kendall_tau;
using tightfit::evaluators::rank_agreement;
using tightfit::evaluators::spearman_rho;

// `expr` throws `Ex` with a message that `matcher` accepts (Catch2 v2's CHECK_THROWS_MATCHES
// matches the exception object, not its message).
#define CHECK_THROWS_CONTAINING(expr, Ex, matcher) \
  do {                                             \
    CHECK_THROWS_AS(expr, Ex);                     \
    CHECK_THROWS_WITH(expr, matcher);              \
  } while (0)

using V = std::vector<double>;

TEST_CASE("average_ranks: 1-based, ties share the mean of their ranks", "[fidelity]") {
  CHECK(average_ranks({}) == V{});
  CHECK(average_ranks({5}) == V{1});
  CHECK(average_ranks({30, 10, 20}) == V{3, 1, 2});
  // 10 -> 1; the two 20s span ranks 2 and 3 -> 2.5; 30 -> 4.
  CHECK(average_ranks({20, 10, 30, 20}) == V{2.5, 1, 4, 2.5});
  // Three 7s span ranks 2..4 -> 3; the two 9s span 5..6 -> 5.5.
  CHECK(average_ranks({7, 9, 1, 7, 9, 7}) == V{3, 5.5, 1, 3, 5.5, 3});
  CHECK(average_ranks({4, 4, 4}) == V{2, 2, 2});
}

TEST_CASE("Kendall tau-b and Spearman rho: hand-computed cases", "[fidelity]") {
  SECTION("no ties") {
    // x = 1 2 3 4, y = 1 3 2 4. Of the 6 pairs only (2,3) is ordered oppositely: C = 5, D = 1,
    // tau = (5 - 1) / 6 = 2/3. Ranks are the values; d = 0 1 1 0, sum d^2 = 2,
    // rho = 1 - 6 * 2 / (4 * (16 - 1)) = 0.8.
    const V x{1, 2, 3, 4}, y{1, 3, 2, 4};
    CHECK(kendall_tau(x, y) == Approx(2.0 / 3.0));
    CHECK(spearman_rho(x, y) == Approx(0.8));
  }
  SECTION("ties in one variable") {
    // x = 1 2 2 3, y = 1 2 3 4. Pair (2,3) is tied in x (n1 = 1, n2 = 0); the other 5 pairs are
    // concordant: tau_b = 5 / sqrt((6 - 1) (6 - 0)) = 5 / sqrt(30) = 0.912871.
    // Ranks x = 1 2.5 2.5 4, y = 1 2 3 4, both of mean 2.5: deviations -1.5 0 0 1.5 and
    // -1.5 -0.5 0.5 1.5; sum of products 4.5, sums of squares 4.5 and 5:
    // rho = 4.5 / sqrt(4.5 * 5) = sqrt(0.9) = 0.948683.
    const V x{1, 2, 2, 3}, y{1, 2, 3, 4};
    CHECK(kendall_tau(x, y) == Approx(5.0 / std::sqrt(30.0)));
    CHECK(spearman_rho(x, y) == Approx(std::sqrt(0.9)));
    // Symmetric in its arguments.
    CHECK(kendall_tau(y, x) == Approx(5.0 / std::sqrt(30.0)));
    CHECK(spearman_rho(y, x) == Approx(std::sqrt(0.9)));
  }
  SECTION("ties in both variables") {
    // x = 1 1 2 3 4, y = 1 2 2 4 3. 10 pairs: (1,2) tied in x, (2,3) tied in y, (4,5) discordant,
    // the other 7 concordant. tau_b = (7 - 1) / sqrt((10 - 1) (10 - 1)) = 6 / 9 = 2/3.
    // Ranks x = 1.5 1.5 3 4 5, y = 1 2.5 2.5 5 4, mean 3: deviations -1.5 -1.5 0 1 2 and
    // -2 -0.5 -0.5 2 1; products sum to 3 + 0.75 + 0 + 2 + 2 = 7.75, squares to 9.5 and 9.5:
    // rho = 7.75 / 9.5 = 31/38.
    const V x{1, 1, 2, 3, 4}, y{1, 2, 2, 4, 3};
    CHECK(kendall_tau(x, y) == Approx(2.0 / 3.0));
    CHECK(spearman_rho(x, y) == Approx(31.0 / 38.0));
  }
  SECTION("a pair tied in both variables") {
    // x = 1 1 2, y = 5 5 6: pair (1,2) tied in both (n1 = n2 = 1), the 2 others concordant:
    // tau_b = 2 / sqrt((3 - 1) (3 - 1)) = 1. Ranks are 1.5 1.5 3 in both: rho = 1.
    const V x{1, 1, 2}, y{5, 5, 6};
    CHECK(kendall_tau(x, y) == Approx(1.0));
    CHECK(spearman_rho(x, y) == Approx(1.0));
  }
  SECTION("perfect and reversed agreement") {
    const V x{0.1, 0.5, 0.2, 0.9, 0.7};
    V same, reversed;
    for (double v : x) {
      same.push_back(std::exp(3 * v));  // monotone: the ranks are those of x
      reversed.push_back(-v * v);
    }
    CHECK(kendall_tau(x, same) == Approx(1.0));
    CHECK(spearman_rho(x, same) == Approx(1.0));
    CHECK(kendall_tau(x, reversed) == Approx(-1.0));
    CHECK(spearman_rho(x, reversed) == Approx(-1.0));
    // Two points are enough.
    CHECK(kendall_tau({1, 2}, {3, 4}) == Approx(1.0));
    CHECK(spearman_rho({1, 2}, {4, 3}) == Approx(-1.0));
  }
}

TEST_CASE("rank statistics of a constant list are NaN, written as null", "[fidelity]") {
  const V x{1, 2, 3}, flat{0.5, 0.5, 0.5};
  CHECK(std::isnan(kendall_tau(x, flat)));
  CHECK(std::isnan(kendall_tau(flat, x)));
  CHECK(std::isnan(spearman_rho(x, flat)));
  CHECK(std::isnan(spearman_rho(flat, flat)));
  const auto r = rank_agreement(x, flat);
  CHECK(r.n == 3);
  const auto j = r.to_json();
  CHECK(j.at("kendall_tau").is_null());
  CHECK(j.at("spearman_rho").is_null());
  CHECK(j.at("n") == 3);
}

TEST_CASE("rank_agreement reports both statistics and the count", "[fidelity]") {
  const auto r = rank_agreement({1, 2, 3, 4}, {1, 3, 2, 4});
  CHECK(r.n == 4);
  CHECK(r.kendall_tau == Approx(2.0 / 3.0));
  CHECK(r.spearman_rho == Approx(0.8));
  const auto j = r.to_json();
  CHECK(j.at("kendall_tau").get<double>() == Approx(2.0 / 3.0));
  CHECK(j.at("spearman_rho").get<double>() == Approx(0.8));
  CHECK(j.at("n") == 4);
}

TEST_CASE("rank statistics: user mistakes are InputErrors", "[fidelity]") {
  CHECK_THROWS_CONTAINING(kendall_tau({1, 2, 3}, {1, 2}), InputError, Contains("3 and 2"));
  CHECK_THROWS_CONTAINING(spearman_rho({1, 2}, {1, 2, 3}), InputError, Contains("2 and 3"));
  CHECK_THROWS_CONTAINING(kendall_tau({1}, {1}), InputError, Contains("at least 2"));
  CHECK_THROWS_CONTAINING(spearman_rho({}, {}), InputError, Contains("at least 2"));
  CHECK_THROWS_CONTAINING(rank_agreement({1}, {2}), InputError, Contains("at least 2"));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_CONTAINING(kendall_tau({1, nan, 3}, {1, 2, 3}), InputError, Contains("x[1]"));
  CHECK_THROWS_CONTAINING(spearman_rho({1, 2, 3}, {1, 2, inf}), InputError, Contains("y[2]"));
  CHECK_THROWS_AS(average_ranks({nan}), InputError);
}

TEST_CASE("rank statistics of 3000 points: fast, high agreement, rho above tau", "[fidelity]") {
  // Scores of 3000 candidates: a proxy that is the truth plus a small deterministic wobble.
  V truth, proxy;
  for (int i = 0; i < 3000; ++i) {
    truth.push_back(std::sin(0.37 * i) + 0.001 * i);
    proxy.push_back(truth.back() + 0.05 * std::cos(1.3 * i));
  }
  const auto r = rank_agreement(truth, proxy);
  CHECK(r.kendall_tau > 0.9);
  CHECK(r.kendall_tau < 1.0);
  CHECK(r.spearman_rho > r.kendall_tau);  // rho >= tau for strongly agreeing rankings
}
