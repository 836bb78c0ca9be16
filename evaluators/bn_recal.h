#pragma once
// `bn-recal` (and `subset`): accuracy on a fixed validation subset, after re-estimating every
// BatchNorm layer's statistics on a few training batches. Pruning changes the statistics of
// every layer downstream; EagleEye (Li et al., 2020) shows that scoring pruned candidates with
// the stale statistics ranks them poorly and that this "adaptive BN" step fixes most of it.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "evaluators/evaluator.h"
#include "graph/executor.h"

namespace tightfit::evaluators {

/// Re-estimates every BatchNorm layer's running statistics of `ex` as the equal-weight mean over
/// `batches` seeded training batches (EagleEye's adaptive BN); leaves `ex` in eval mode.
void recalibrate_bn(graph::Executor& ex, const datasets::Split& data, int64_t batches,
                    int64_t batch_size, uint64_t seed);

struct BnRecalConfig {
  int64_t bn_batches = 10;           ///< training batches to re-estimate BN statistics (0 = none)
  int64_t batch_size = 128;          ///< images per recalibration batch
  int64_t validation_images = 2000;  ///< first N validation images scored (<= 5000)
  uint64_t seed = 7;  ///< which training images recalibrate (same for every candidate)
  int threads = 1;    ///< LibTorch threads for evaluation

  template <typename Fields>
  void fields(Fields& f) {
    f("bn_batches", bn_batches);
    f("batch_size", batch_size);
    f("validation_images", validation_images);
    f("seed", seed);
    f("threads", threads);
  }
  static BnRecalConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
  /// ConfigError naming `where` when a value is out of range.
  void check(const std::string& where) const;
};

/// Accuracy and loss of `net` on the first config.validation_images validation images, after
/// recalibrating BN on config.bn_batches training batches (none when 0). Throws on failure.
AccuracyResult score_subset(const graph::Network& net, const BnRecalConfig& config,
                            const datasets::Split& data);

/// Runs `score` and fills in the seconds it took; an exception becomes the result's error
/// (failures of a candidate are data).
AccuracyResult timed_evaluation(const std::function<AccuracyResult()>& score);

class BnRecalEvaluator : public AccuracyEvaluator {
 public:
  BnRecalEvaluator(BnRecalConfig config, const datasets::Split& data, std::string name);
  std::string name() const override { return name_; }
  nlohmann::json settings() const override { return config_.to_json(); }
  AccuracyResult evaluate(const policies::CompressedNetwork& candidate,
                          const graph::Network& original) override;
  graph::Network evaluated_network(const policies::CompressedNetwork& candidate,
                                   const graph::Network& original) override;

 private:
  BnRecalConfig config_;
  const datasets::Split& data_;
  std::string name_;
};

}  // namespace tightfit::evaluators
