#pragma once
// Pre-screening search candidates with a learned accuracy predictor (APQ, Once-for-All). Once
// enough candidates have real proxy scores, an MLP from the policy encoding to accuracy
// (evaluators/predictor.h) predicts each new candidate's accuracy from its cost-free encoding.
// A candidate whose predicted accuracy, raised by a margin of the predictor's own cross-validated
// error, is still dominated by a candidate already scored (at most its latency and size, at least
// that accuracy) is not scored by the proxy: the strategy is told the predicted accuracy, the
// journal records it with accuracy_source "predictor", and it never enters the front.
//
// The predictor is fitted on the first floor(n / refit_every) x refit_every real scores in run
// order, so its state is a function of the journal alone: a resumed run screens exactly as an
// uninterrupted one.

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "evaluators/predictor.h"
#include "search/evaluation.h"
#include "search/space.h"

namespace tightfit::search {

struct ScreenConfig {
  evaluators::PredictorConfig predictor;
  double margin = 1.0;       ///< in units of the predictor's cross-validated RMSE
  int64_t refit_every = 20;  ///< real scores between fits

  template <typename Fields>
  void fields(Fields& f) {
    predictor.fields(f);
    f("margin", margin);
    f("refit_every", refit_every);
  }
  /// The predictor's keys plus "margin" and "refit_every", strictly.
  static ScreenConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
};

/// The method genes of `space` as a policy encoder one-hot encodes them.
evaluators::MethodChoices method_choices(const SearchSpace& space);

class Screener {
 public:
  /// Encodes policies over `space`'s decision points and method genes.
  Screener(ScreenConfig config, const SearchSpace& space);
  /// The predicted accuracy of `candidate` (its cost known) when it should not be scored, given
  /// the run's evaluations so far; nullopt when it should be scored (or nothing is fitted yet).
  std::optional<double> screen(const Evaluation& candidate, const std::vector<Evaluation>& history);
  /// Fits done, candidates screened out, and the last fit's report.
  nlohmann::json summary() const;

 private:
  void refit(const std::vector<Evaluation>& history);

  ScreenConfig config_;
  evaluators::PolicyEncoder encoder_;
  std::unique_ptr<evaluators::AccuracyPredictor> predictor_;
  evaluators::FitReport last_fit_;
  size_t fitted_on_ = 0;  ///< real scores the current predictor was fitted on
  int64_t fits_ = 0;
  int64_t screened_ = 0;
};

/// Whether `e` counts as a real proxy score (successful, scored by the proxy, not the baseline).
bool is_real_score(const Evaluation& e);

}  // namespace tightfit::search
