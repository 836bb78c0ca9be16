// l1: the L1 norm of each filter (Li et al. 2017, "Pruning Filters for Efficient ConvNets").
//
// A filter whose weights are small produces small feature maps, so removing it perturbs the next
// layer least. Each producer's filter norms are divided by the filter size (mean |w|) so that
// the layers of one residual group (3x3 convolutions and a 1x1 projection shortcut) weigh alike;
// the group's score is their sum. Needs no data.

#include "policies/criteria/criteria.h"

namespace tightfit::policies::criteria {

Scores l1_scores(const CriterionInput& in) {
  return for_decision_points(in.ca, [&](int g) { return l1_group(in.net, in.ca.groups[g]); });
}

}  // namespace tightfit::policies::criteria
