// random: uniform random scores, the baseline every criterion must beat (and, as Liu et al.
// 2019 "Rethinking the Value of Network Pruning" and Mittal et al. 2018 found, often a close
// one when the pruned network is fine-tuned).
//
// Seeded, so the same seed gives the same channels (invariant 5). The doubles are made from the
// generator's 53 high bits rather than std::uniform_real_distribution, whose algorithm differs
// between standard libraries.

#include <random>

#include "policies/criteria/criteria.h"

namespace tightfit::policies::criteria {

Scores random_scores(const CriterionInput& in) {
  constexpr double kTwoToMinus53 = 1.0 / 9007199254740992.0;
  std::mt19937_64 rng(in.seed);
  return for_decision_points(in.ca, [&](int g) {
    std::vector<double> score(static_cast<size_t>(in.ca.groups[g].channels));
    for (double& s : score) s = static_cast<double>(rng() >> 11) * kTwoToMinus53;
    return score;
  });
}

}  // namespace tightfit::policies::criteria
