#pragma once
// Proxy fidelity: how well a cheap accuracy proxy ranks candidates, measured against a longer
// fine-tune. A search keeps what its proxy ranks highest, so the ranking is what matters, not the
// absolute accuracy: Kendall's tau and Spearman's rho over the same candidates say how far the
// proxy can be trusted (EagleEye's observation that plain evaluation of pruned networks ranks
// them poorly and adaptive BN ranks them well is exactly such a measurement).
//
// The candidates are drawn from the search space of a search config, near compression levels
// spread over [0, 1] (a uniform draw per gene would give networks of nearly one size, whose
// order is mostly noise), applied as the controller applies them, and scored by every proxy and
// by the reference. The proxy `predictor` is special: its accuracy for each candidate is the
// out-of-fold prediction of an MLP fitted to the reference accuracies of the other folds.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "evaluators/fidelity.h"
#include "evaluators/finetune.h"
#include "search/config.h"

namespace tightfit::search {

struct ProxySpec {
  std::string name;                                  ///< an evaluator name, or "predictor"
  nlohmann::json config = nlohmann::json::object();  ///< its config section
};

/// The default reference: 300 steps of fine-tuning with distillation, then the whole validation
/// split (5000 images) with the statistics the fine-tune left.
evaluators::FinetuneConfig default_reference_finetune();

struct FidelityOptions {
  int64_t samples = 30;  ///< candidates drawn
  /// The reference: a longer fine-tune with distillation, scored on the whole validation split.
  evaluators::FinetuneConfig reference = default_reference_finetune();
  std::vector<ProxySpec> proxies;  ///< empty: the config's own evaluator
  bool progress = true;            ///< one line per candidate on stderr
};

struct ProxyFidelity {
  std::string name;
  nlohmann::json settings;
  std::vector<double> accuracy;  ///< per candidate (NaN where it failed)
  double ms_per_candidate = 0;
  int64_t failed = 0;
  evaluators::RankAgreement agreement;  ///< over candidates both it and the reference scored
};

struct FidelityResult {
  std::vector<policies::Policy> policies;
  std::vector<double> reference;  ///< reference accuracy per candidate (NaN where it failed)
  double reference_ms_per_candidate = 0;
  nlohmann::json reference_settings;
  std::vector<ProxyFidelity> proxies;
  nlohmann::json context;

  nlohmann::json to_json() const;
  /// A fixed-width table: proxy | ms per candidate | Kendall tau | Spearman rho | failed.
  std::string table() const;
};

/// Draws opts.samples policies from `config`'s space and scores them with every proxy and the
/// reference. Unknown proxies and bad proxy configs are ConfigErrors, raised before any scoring;
/// fewer than 2 samples is a ConfigError.
FidelityResult measure_fidelity(const SearchConfig& config, const FidelityOptions& opts);

}  // namespace tightfit::search
