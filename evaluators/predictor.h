#pragma once
// A learned accuracy predictor in the manner of APQ and Once-for-All: after a few dozen to a few
// hundred candidates have been scored by a real proxy, a small MLP maps a policy's encoding to its
// accuracy and scores further candidates in microseconds. PolicyEncoder turns a Policy into a
// fixed-length vector over one network's decision points; AccuracyPredictor fits the MLP and
// reports its own error (cross-validated), so a search can tell whether to trust it.
//
// LibTorch stays out of this header (the MLP lives behind a pimpl).

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "policies/policy.h"

namespace tightfit::evaluators {

/// Fixed-length features of a policy over one network's decision points, every value in [0, 1]:
/// per channel group (in DecisionPoints order) the fraction of channels kept, then per conv/linear
/// layer (in order) weight bits / 32, activation bits / 32, rank fraction and sparsity. A point
/// the policy does not name encodes as uncompressed (1, 1, 1, 1, 0), as does the empty policy.
/// The rank fraction is the policy's rank value for rank_by "fraction" and "energy" (an energy
/// share, which grows with the rank kept) and rank / full rank for "count"; keep_count is read as
/// a share of the group's channels.
/// Methods chosen per decision point (a search space's method genes) follow, one-hot: per group
/// the criterion, then per layer the quantization scheme and the conv factorization, each over
/// the names `methods` lists for it (none when its list is empty: a method fixed in a search
/// needs no feature).
struct MethodChoices {
  std::vector<std::string> criteria;        ///< per channel group
  std::vector<std::string> schemes;         ///< per layer
  std::vector<std::string> factorizations;  ///< per layer
};

class PolicyEncoder {
 public:
  explicit PolicyEncoder(const policies::DecisionPoints& points, MethodChoices methods = {});

  /// The features of `policy` (size() values). Throws ConfigError when the policy names a point
  /// this network does not have or a value out of range (policies::validate).
  std::vector<float> encode(const policies::Policy& policy) const;
  /// Number of features: channel groups x (1 + criteria) + layers x (4 + schemes +
  /// factorizations).
  size_t size() const;
  /// "<group>/keep", "<layer>/weight_bits", "<layer>/act_bits", "<layer>/rank",
  /// "<layer>/sparsity", then "<group>/criterion=<name>", "<layer>/scheme=<name>",
  /// "<layer>/factorization=<name>", in encode()'s order.
  std::vector<std::string> feature_names() const;

 private:
  policies::DecisionPoints points_;
  MethodChoices methods_;
};

struct PredictorConfig {
  int64_t hidden = 64;        ///< units per hidden layer
  int64_t layers = 2;         ///< hidden layers (ReLU)
  int64_t steps = 200;        ///< full-batch Adam steps per model (a fit trains folds + 1)
  double lr = 3e-2;           ///< Adam learning rate
  double weight_decay = 0.1;  ///< AdamW: each step shrinks the weights by lr x this
  int64_t folds = 5;          ///< cross-validation folds for the reported error (0 = skip)
  int64_t min_samples = 20;   ///< fewer scored policies than this cannot be fitted
  uint64_t seed = 0;          ///< weight initialization and fold assignment
  int threads = 0;            ///< LibTorch threads while fitting (0 = leave the setting as is)

  template <typename Fields>
  void fields(Fields& f) {
    f("hidden", hidden);
    f("layers", layers);
    f("steps", steps);
    f("lr", lr);
    f("weight_decay", weight_decay);
    f("folds", folds);
    f("min_samples", min_samples);
    f("seed", seed);
    f("threads", threads);
  }
  /// ConfigError naming `where` for a value out of range.
  void check(const std::string& where) const;
  /// Strict: unknown keys and out-of-range values are ConfigErrors naming `where`.
  static PredictorConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
};

/// How well a fit went, in the targets' units (accuracy in [0, 1] for an accuracy predictor).
struct FitReport {
  int64_t n = 0;          ///< samples fitted
  double target_std = 0;  ///< standard deviation of the targets: the error of predicting the mean
  double train_rmse = 0;  ///< RMSE of the final model on the samples it was fitted to
  /// RMSE of out-of-fold predictions: each sample predicted by a model fitted on the other
  /// folds (k-fold with PredictorConfig::folds, folds assigned by the seed); NaN with folds = 0.
  double holdout_rmse = 0;
  double holdout_kendall_tau = 0;  ///< Kendall's tau-b of out-of-fold predictions vs targets
  int64_t folds = 0;               ///< folds used (0 = no cross-validation)
  double seconds = 0;              ///< wall time of the whole fit, cross-validation included

  /// Every field; an undefined statistic (NaN) is written as null.
  nlohmann::json to_json() const;
};

/// An MLP from encodings to a scalar (accuracy). Inputs and targets are standardized inside, so
/// any scale works. Deterministic for a given config (seed) and data: it uses its own random
/// generator and never reseeds LibTorch's global one.
class AccuracyPredictor {
 public:
  /// Throws ConfigError for a config value out of range (as PredictorConfig::from_json does).
  explicit AccuracyPredictor(PredictorConfig config = {});
  ~AccuracyPredictor();
  AccuracyPredictor(AccuracyPredictor&&) noexcept;
  AccuracyPredictor& operator=(AccuracyPredictor&&) noexcept;

  /// Fits to (x[i], y[i]), replacing any previous fit: cross-validates with config.folds models
  /// for the report, then fits the final model on every sample. Throws InputError with fewer than
  /// config.min_samples samples, rows of different lengths, x and y of different lengths, or a
  /// value that is not finite.
  FitReport fit(const std::vector<std::vector<float>>& x, const std::vector<double>& y);
  /// Predicted targets for `x` (accuracy, higher is better). Throws InputError for a row whose
  /// length differs from the fitted one; calling it before fit() is a bug (InternalError).
  std::vector<double> predict(const std::vector<std::vector<float>>& x) const;

  bool fitted() const;
  const PredictorConfig& config() const { return config_; }

 private:
  struct Model;
  PredictorConfig config_;
  std::unique_ptr<Model> model_;
};

}  // namespace tightfit::evaluators
