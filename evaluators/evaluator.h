#pragma once
// Accuracy proxies: how good a compressed network is, estimated cheaply enough to score hundreds
// of candidates. Each proxy is one file under evaluators/, chosen by name from one registry, with
// a config struct parsed strictly. A candidate that cannot be evaluated is reported with its
// error, not thrown (STYLE.md 4).

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/fashion_mnist.h"
#include "policies/compress.h"

namespace tightfit::evaluators {

struct AccuracyResult {
  double accuracy = 0;  ///< top-1 on the evaluation images, in [0, 1]
  double loss = 0;      ///< mean cross-entropy
  int64_t images = 0;
  double seconds = 0;
  std::string error;  ///< non-empty when the evaluation failed
  bool ok() const { return error.empty(); }
};

class AccuracyEvaluator {
 public:
  virtual ~AccuracyEvaluator() = default;
  virtual std::string name() const = 0;
  /// Settings that change the result (for cache keys and result context).
  virtual nlohmann::json settings() const = 0;
  virtual AccuracyResult evaluate(const policies::CompressedNetwork& candidate,
                                  const graph::Network& original) = 0;
  /// The network whose accuracy evaluate() reports, which a run saves and exports: the
  /// candidate itself, or (proxies that recalibrate BatchNorm) the candidate with the
  /// recalibrated statistics.
  virtual graph::Network evaluated_network(const policies::CompressedNetwork& candidate,
                                           const graph::Network& /*original*/) {
    return candidate.net;
  }
};

/// Builds the evaluator `name` with its JSON config (unknown keys rejected) on `data`, which must
/// outlive it. Throws ConfigError listing the known names on a miss.
std::unique_ptr<AccuracyEvaluator> make_evaluator(const std::string& name,
                                                  const nlohmann::json& config,
                                                  const datasets::Split& data);
std::vector<std::string> evaluator_names();

/// Checks evaluator `name` and its config as make_evaluator would (ConfigError naming the
/// problem), without any data: configs are checked before anything is loaded.
void check_evaluator_config(const std::string& name, const nlohmann::json& config);

/// Training batches drawn once per run for `policies::apply`: activation ranges and data-driven
/// pruning criteria. The seed makes them, and therefore every compressed network, reproducible.
constexpr int64_t kCalibrationBatches = 4;
constexpr int64_t kCalibrationBatchSize = 64;
policies::Calibration sample_calibration(const datasets::Split& data, uint64_t seed,
                                         int64_t batches = kCalibrationBatches,
                                         int64_t batch_size = kCalibrationBatchSize);

}  // namespace tightfit::evaluators
