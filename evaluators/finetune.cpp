#include "evaluators/finetune.h"

#include "core/json.h"
#include "graph/executor.h"
#include "policies/quantize.h"

namespace tightfit::evaluators {

namespace {
// A short fine-tune warms up over its first tenth: a full-size step on weights just cut (and
// BN statistics just changed) would undo more than it heals.
constexpr double kWarmupFraction = 0.1;
}  // namespace

FinetuneConfig FinetuneConfig::from_json(const nlohmann::json& j, const std::string& where) {
  const auto c = read_section<FinetuneConfig>(j, where);
  c.score.check(where);
  if (c.steps < 0) throw ConfigError(where + ".steps must be >= 0 (0 = score as cut)");
  if (c.train_batch_size < 1) throw ConfigError(where + ".train_batch_size must be >= 1");
  if (c.optimizer != "sgd" && c.optimizer != "adam")
    throw ConfigError(where + ".optimizer is '" + c.optimizer + "'; valid: sgd, adam");
  if (!(c.lr > 0)) throw ConfigError(where + ".lr must be > 0");
  if (c.weight_decay < 0) throw ConfigError(where + ".weight_decay must be >= 0");
  if (!(c.temperature > 0)) throw ConfigError(where + ".temperature must be > 0");
  if (!(c.distill_weight >= 0 && c.distill_weight <= 1))
    throw ConfigError(where + ".distill_weight must be in [0, 1]");
  return c;
}

nlohmann::json FinetuneConfig::to_json() const { return write_section(*this); }

models::TrainOptions FinetuneConfig::train_options(const graph::Network& teacher) const {
  models::TrainOptions o;
  o.epochs = 1 << 20;  // bounded by max_steps
  o.max_steps = steps;
  o.batch_size = train_batch_size;
  o.optimizer = optimizer;
  o.lr = lr;
  o.weight_decay = weight_decay;
  o.warmup_fraction = kWarmupFraction;
  o.seed = train_seed;
  o.threads = score.threads;
  o.progress = false;
  o.final_evaluation = false;
  if (distill) {
    o.teacher = &teacher;
    o.distill_temperature = temperature;
    o.distill_weight = distill_weight;
  }
  return o;
}

models::TrainResult finetune_compressed(policies::CompressedNetwork& c, const datasets::Split& data,
                                        models::TrainOptions opts, uint64_t quant_seed) {
  opts.masks = c.masks;
  opts.weight_bits.clear();
  opts.weight_quantizers.clear();
  for (const auto& [layer, bits] : c.weight_bits) {
    if (bits >= 32) continue;
    // The layer's own scheme (a factor has its original layer's). The executor's own grid is
    // symmetric per channel from the range: the default scheme below 16 bits. Every other
    // scheme trains through the policy's quantizer itself.
    const policies::QuantConfig q = c.policy.quantization_of(c.layers.at(layer).origin);
    const bool executor_grid =
        q.scheme == "symmetric" && q.granularity == "per_channel" && q.calibration == "minmax";
    if (executor_grid && bits < 16) {
      opts.weight_bits[layer] = bits;
    } else if (q.scheme == "kmeans" && bits < 16) {
      opts.weight_quantizers[layer] = policies::kmeans_weight_sharing(bits);
    } else {
      opts.weight_quantizers[layer] = [bits = bits, q](graph::Tensor& w) {
        policies::fake_quantize_weight(w, bits, q);
      };
    }
  }
  const bool final_evaluation = opts.final_evaluation;
  opts.final_evaluation = false;  // scored below, once the weights are what the policy says
  models::TrainResult r = models::train_model(c.net, data, opts);
  policies::requantize_weights(c, quant_seed);
  if (final_evaluation) {
    graph::Executor ex(c.net);
    r.validation_accuracy = models::evaluate(ex, data.validation, data.mean, data.std).accuracy;
    r.test_accuracy = models::evaluate(ex, data.test, data.mean, data.std).accuracy;
  }
  return r;
}

FinetuneEvaluator::FinetuneEvaluator(FinetuneConfig config, const datasets::Split& data)
    : config_(std::move(config)), data_(data) {}

graph::Network FinetuneEvaluator::tune(const policies::CompressedNetwork& candidate,
                                       const graph::Network& original) const {
  if (config_.steps == 0) return candidate.net;
  policies::CompressedNetwork tuned = candidate;
  finetune_compressed(tuned, data_, config_.train_options(original), config_.train_seed);
  return std::move(tuned.net);
}

AccuracyResult FinetuneEvaluator::score(const graph::Network& tuned) const {
  return timed_evaluation([&] { return score_subset(tuned, config_.score, data_); });
}

AccuracyResult FinetuneEvaluator::evaluate(const policies::CompressedNetwork& candidate,
                                           const graph::Network& original) {
  return timed_evaluation([&] {
    if (config_.steps == 0) return score_subset(candidate.net, config_.score, data_);
    return score_subset(tune(candidate, original), config_.score, data_);
  });
}

}  // namespace tightfit::evaluators
