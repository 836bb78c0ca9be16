#include "evaluators/fidelity.h"

#include <cmath>
#include <string>

#include "core/errors.h"
#include "core/stats.h"

namespace tightfit::evaluators {
namespace {

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

}  // namespace

// The statistics themselves are core/stats.h's; this layer turns unusable input into InputErrors
// that say what to fix.

std::vector<double> average_ranks(const std::vector<double>& x) {
  check_finite(x, "x");
  return tightfit::average_ranks(x);
}

double kendall_tau(const std::vector<double>& x, const std::vector<double>& y) {
  check_pairs(x, y);
  return tightfit::kendall_tau_b(x, y);
}

double spearman_rho(const std::vector<double>& x, const std::vector<double>& y) {
  check_pairs(x, y);
  return tightfit::spearman_rho(x, y);
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
