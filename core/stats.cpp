#include "core/stats.h"

// Boost 1.74's bivariate_statistics.hpp calls sqrt without including <cmath>: <cmath> goes first.
// clang-format off
#include <cmath>
#include <boost/math/statistics/bivariate_statistics.hpp>
// clang-format on

#include <algorithm>
#include <boost/math/statistics/univariate_statistics.hpp>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>

namespace tightfit {
namespace {

namespace bms = boost::math::statistics;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool constant(const std::vector<double>& v) {
  return std::adjacent_find(v.begin(), v.end(), std::not_equal_to<>()) == v.end();
}

/// quantile() of a sample that is already sorted and not empty.
double sorted_quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

int sign(double d) { return (d > 0) - (d < 0); }

}  // namespace

// Boost asserts on the sample sizes it cannot handle; those cases are answered here first.

double mean(const std::vector<double>& v) { return v.empty() ? 0.0 : bms::mean(v); }

double variance(const std::vector<double>& v) { return v.empty() ? 0.0 : bms::variance(v); }

double sample_variance(const std::vector<double>& v) {
  return v.size() < 2 ? 0.0 : bms::sample_variance(v);
}

double sample_stddev(const std::vector<double>& v) { return std::sqrt(sample_variance(v)); }

double median(std::vector<double> v) { return v.empty() ? 0.0 : bms::median(v); }

// Boost 1.74 has no general quantile: this is the definition the timing protocol has always
// reported (type 7), kept bit for bit.
double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return sorted_quantile(v, q);
}

double interquartile_range(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  std::vector<double> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  return sorted_quantile(sorted, 0.75) - sorted_quantile(sorted, 0.25);
}

double pearson_correlation(const std::vector<double>& x, const std::vector<double>& y) {
  // Boost calls two constant lists perfectly correlated (1) and one constant list uncorrelated
  // (0); with no variation there is no order to agree on, so both are undefined here.
  if (x.size() < 2 || constant(x) || constant(y)) return kNaN;
  return bms::correlation_coefficient(x, y);
}

std::vector<double> average_ranks(const std::vector<double>& x) {
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> ranks(x.size());
  // A run of equal values at sorted positions [i, j) spans ranks i+1 .. j; each gets their mean.
  for (size_t i = 0; i < order.size();) {
    size_t j = i + 1;
    while (j < order.size() && x[order[j]] == x[order[i]]) ++j;
    const double mean_rank = 0.5 * static_cast<double>(i + 1 + j);
    for (size_t k = i; k < j; ++k) ranks[order[k]] = mean_rank;
    i = j;
  }
  return ranks;
}

double spearman_rho(const std::vector<double>& x, const std::vector<double>& y) {
  return pearson_correlation(average_ranks(x), average_ranks(y));
}

// Boost 1.74 has no Kendall's tau.
double kendall_tau_b(const std::vector<double>& x, const std::vector<double>& y) {
  const int64_t n = static_cast<int64_t>(x.size());
  int64_t concordant = 0, discordant = 0, tied_x = 0, tied_y = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      const int sx = sign(x[i] - x[j]);
      const int sy = sign(y[i] - y[j]);
      tied_x += sx == 0;
      tied_y += sy == 0;
      const int s = sx * sy;
      concordant += s > 0;
      discordant += s < 0;
    }
  const int64_t pairs = n * (n - 1) / 2;
  if (tied_x == pairs || tied_y == pairs) return kNaN;  // a constant list has no order
  return static_cast<double>(concordant - discordant) /
         std::sqrt(static_cast<double>(pairs - tied_x) * static_cast<double>(pairs - tied_y));
}

}  // namespace tightfit
