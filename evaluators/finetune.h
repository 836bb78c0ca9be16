#pragma once
// `finetune`: a short fine-tune of the candidate, then `bn-recal`-style scoring of a validation
// subset. Pruning and quantization hurt a network unevenly and much of the damage heals within a
// few hundred steps, so a candidate's accuracy after a short fine-tune ranks candidates closer to
// their final accuracy than their accuracy as cut (AMC, NetAdapt and HAQ all fine-tune briefly).
//
// The fine-tune keeps the candidate what it is: pruning masks stay applied (pruned weights get no
// gradient), quantized layers train through fake-quantization with a straight-through gradient
// (graph::Executor::constrain_weights), and fake-quant activation nodes pass gradients inside
// their range. With `distill`, the uncompressed network teaches the candidate through its soft
// targets at `temperature` (Hinton et al., 2015). With 0 steps this is exactly `subset` (or
// `bn-recal` when bn_batches > 0).

#include <cstdint>
#include <string>

#include "evaluators/bn_recal.h"
#include "evaluators/evaluator.h"
#include "models/train.h"

namespace tightfit::evaluators {

struct FinetuneConfig {
  int64_t steps = 100;             ///< SGD steps on the training split (0 = score as cut)
  int64_t train_batch_size = 128;  ///< images per fine-tuning step
  std::string optimizer = "sgd";   ///< "sgd" (momentum 0.9, Nesterov) or "adam"
  double lr = 0.01;                ///< peak learning rate (short warm-up, cosine decay)
  double weight_decay = 0.0;
  bool distill = true;          ///< distil from the uncompressed network
  double temperature = 4.0;     ///< distillation temperature
  double distill_weight = 0.7;  ///< share of the loss from the teacher's soft targets
  uint64_t train_seed = 11;     ///< which training batches, in which order (same per candidate)
  /// Scoring after the fine-tune: BN recalibration batches (0 = keep the statistics the
  /// fine-tune left), validation subset, threads (also used by the fine-tune).
  BnRecalConfig score{0, 128, 2000, 7, 1};

  template <typename Fields>
  void fields(Fields& f) {
    f("steps", steps);
    f("train_batch_size", train_batch_size);
    f("optimizer", optimizer);
    f("lr", lr);
    f("weight_decay", weight_decay);
    f("distill", distill);
    f("temperature", temperature);
    f("distill_weight", distill_weight);
    f("train_seed", train_seed);
    score.fields(f);  // the scoring keys, over this evaluator's own scoring defaults
  }
  static FinetuneConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
  /// The TrainOptions of the fine-tune (teacher set when distilling); finetune_compressed adds
  /// the candidate's masks and weight bits.
  models::TrainOptions train_options(const graph::Network& teacher) const;
};

/// Fine-tunes `c.net` by `opts` while it stays what `c.policy` made of it: `c.masks` keep pruned
/// weights at zero, and layers of fewer than 32 weight bits train through straight-through
/// fake-quantization on the policy's own grid: the executor's symmetric one for the default
/// scheme, k-means weight sharing (policies::kmeans_weight_sharing) for kmeans, and
/// policies::quantize_weight (`quant_seed`) in every step for pow2, binary, affine, per-tensor,
/// percentile/mse ranges and 16 bits. Afterwards
/// policies::requantize_weights puts the written weights on that grid once more and recounts
/// `c.layers`. With opts.final_evaluation, the validation and test accuracies are the returned
/// network's.
models::TrainResult finetune_compressed(policies::CompressedNetwork& c, const datasets::Split& data,
                                        models::TrainOptions opts, uint64_t quant_seed);

class FinetuneEvaluator : public AccuracyEvaluator {
 public:
  FinetuneEvaluator(FinetuneConfig config, const datasets::Split& data);
  std::string name() const override { return "finetune"; }
  nlohmann::json settings() const override { return config_.to_json(); }
  AccuracyResult evaluate(const policies::CompressedNetwork& candidate,
                          const graph::Network& original) override;
  /// The candidate's network after the fine-tune (the network evaluate() scores).
  graph::Network tune(const policies::CompressedNetwork& candidate,
                      const graph::Network& original) const;
  /// Scores a network as evaluate() scores the tuned one; failures are data.
  AccuracyResult score(const graph::Network& tuned) const;

 private:
  FinetuneConfig config_;
  const datasets::Split& data_;
};

}  // namespace tightfit::evaluators
