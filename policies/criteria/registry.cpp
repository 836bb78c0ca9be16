// The criteria by name: one explicit table (no static self-registration, which the linker drops
// from static libraries), and channel_importance(), which checks the request, dispatches, and
// checks what comes back (one finite score per channel of every decision point).

#include "core/registry.h"

#include <array>
#include <cmath>
#include <string>

#include "core/errors.h"
#include "policies/criteria/criteria.h"
#include "policies/importance.h"

namespace tightfit::policies {

namespace {

struct CriterionEntry {
  const char* name;
  bool needs_data;  ///< reads activations or gradients of the calibration batches
  criteria::Scores (*score)(const criteria::CriterionInput&);
};

// Data-free first, then by the kind of evidence (activations, gradients, reconstruction).
const EntryTable<CriterionEntry>& criteria_table() {
  static const EntryTable<CriterionEntry> table(
      "pruning criterion", "criteria",
      {
          {"l1", false, criteria::l1_scores},
          {"l2", false, criteria::l2_scores},
          {"fpgm", false, criteria::fpgm_scores},
          {"bn_scale", false, criteria::bn_scale_scores},
          {"apoz", true, criteria::apoz_scores},
          {"act_mean", true, criteria::act_mean_scores},
          {"act_var", true, criteria::act_var_scores},
          {"entropy", true, criteria::entropy_scores},
          {"taylor", true, criteria::taylor_scores},
          {"mean_gradient", true, criteria::mean_gradient_scores},
          {"thinet", true, criteria::thinet_scores},
          {"random", false, criteria::random_scores},
      });
  return table;
}

const CriterionEntry& find(const std::string& criterion) { return criteria_table().at(criterion); }

}  // namespace

std::vector<std::string> criterion_names() { return criteria_table().names(); }

bool criterion_needs_data(const std::string& criterion) { return find(criterion).needs_data; }

std::vector<std::vector<double>> channel_importance(const std::string& criterion,
                                                    const graph::Network& net,
                                                    const graph::ChannelAnalysis& ca,
                                                    const Calibration& calibration, uint64_t seed) {
  const CriterionEntry& entry = find(criterion);
  if (entry.needs_data && calibration.empty()) {
    std::vector<std::string> data_free;
    for (const CriterionEntry& e : criteria_table().entries())
      if (!e.needs_data) data_free.emplace_back(e.name);
    throw ConfigError("criterion '" + criterion +
                      "' needs calibration data (a few batches of training images with their "
                      "labels); provide calibration batches or use a data-free criterion: " +
                      join(data_free));
  }
  TIGHTFIT_CHECK(static_cast<int>(ca.layouts.size()) == net.size(),
                 "channel analysis of another network");
  criteria::Scores scores = entry.score({net, ca, calibration, seed});

  TIGHTFIT_CHECK(scores.size() == ca.groups.size(), criterion << ": " << scores.size()
                                                              << " score vectors for "
                                                              << ca.groups.size() << " groups");
  for (int g : ca.decision_points) {
    const auto& s = scores[g];
    TIGHTFIT_CHECK(static_cast<int64_t>(s.size()) == ca.groups[g].channels,
                   criterion << ": group " << ca.groups[g].id << " has " << s.size()
                             << " scores for " << ca.groups[g].channels << " channels");
    for (double v : s)
      if (!std::isfinite(v))
        // Finite weights and data give finite scores: a NaN comes from the user's side.
        throw InputError("criterion '" + criterion + "' gave a non-finite score to group '" +
                         ca.groups[g].id +
                         "'; check the network weights and the calibration images for NaN or "
                         "infinite values");
  }
  return scores;
}

}  // namespace tightfit::policies
