#include "evaluators/fidelity.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "core/errors.h"

namespace tightfit::evaluators {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_finite(const std::vector<double>& v, const char* name) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      throw InputError(std::string("rank statistics: ") + name + "[" + std::to_string(i) + "] is " +
                       std::to_string(v[i]) +
                       "; drop the failed or unscored candidates before comparing rankings");
}

void check_pairs(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size())
    throw InputError("rank statistics: the two score lists have " + std::to_string(x.size()) +
                     " and " + std::to_string(y.size()) +
                     " values; pass one score of each kind per candidate");
  if (x.size() < 2)
    throw InputError("rank statistics need at least 2 candidates, got " + std::to_string(x.size()) +
                     "; score more candidates");
  check_finite(x, "x");
  check_finite(y, "y");
}

int sign(double d) { return (d > 0) - (d < 0); }

}  // namespace

std::vector<double> average_ranks(const std::vector<double>& x) {
  check_finite(x, "x");
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

double kendall_tau(const std::vector<double>& x, const std::vector<double>& y) {
  check_pairs(x, y);
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

double spearman_rho(const std::vector<double>& x, const std::vector<double>& y) {
  check_pairs(x, y);
  const std::vector<double> rx = average_ranks(x), ry = average_ranks(y);
  // Both rank lists sum to n (n + 1) / 2, so they share the mean.
  const double mean = 0.5 * static_cast<double>(rx.size() + 1);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < rx.size(); ++i) {
    const double dx = rx[i] - mean, dy = ry[i] - mean;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx == 0 || syy == 0) return kNaN;
  return sxy / std::sqrt(sxx * syy);
}

nlohmann::json RankAgreement::to_json() const {
  auto stat = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
  return {{"kendall_tau", stat(kendall_tau)}, {"spearman_rho", stat(spearman_rho)}, {"n", n}};
}

RankAgreement rank_agreement(const std::vector<double>& x, const std::vector<double>& y) {
  RankAgreement r;
  r.kendall_tau = kendall_tau(x, y);
  r.spearman_rho = spearman_rho(x, y);
  r.n = static_cast<int64_t>(x.size());
  return r;
}

}  // namespace tightfit::evaluators
