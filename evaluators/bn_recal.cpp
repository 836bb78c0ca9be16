#include "evaluators/bn_recal.h"

#include <torch/torch.h>

#include <chrono>

#include "core/json.h"
#include "core/machine.h"
#include "datasets/batches.h"
#include "graph/executor.h"
#include "models/train.h"

namespace tightfit::evaluators {

void recalibrate_bn(graph::Executor& ex, const datasets::Split& data, int64_t batches,
                    int64_t batch_size, uint64_t seed) {
  torch::NoGradGuard no_grad;
  // The same seeded batches for every candidate, so candidates are compared alike.
  datasets::Batches source(data.train, batch_size, data.mean, data.std, seed);
  ex.begin_bn_recalibration();
  ex.train(true);
  for (int64_t b = 0; b < std::min(batches, source.count()); ++b) ex.forward(source.get(b).images);
  ex.end_bn_recalibration();
  ex.train(false);
}

BnRecalConfig BnRecalConfig::from_json(const nlohmann::json& j, const std::string& where) {
  const auto c = read_section<BnRecalConfig>(j, where);
  c.check(where);
  return c;
}

void BnRecalConfig::check(const std::string& where) const {
  if (bn_batches < 0 || batch_size < 1 || validation_images < 1)
    throw ConfigError(where + ": bn_batches must be >= 0, batch_size and validation_images >= 1");
  check_threads(threads, where + ".threads");
}

nlohmann::json BnRecalConfig::to_json() const { return write_section(*this); }

BnRecalEvaluator::BnRecalEvaluator(BnRecalConfig config, const datasets::Split& data,
                                   std::string name)
    : config_(config), data_(data), name_(std::move(name)) {}

namespace {

/// `net` ready to score as `config` says: BatchNorm recalibrated when it asks for batches.
graph::Executor prepared(const graph::Network& net, const BnRecalConfig& config,
                         const datasets::Split& data) {
  at::set_num_threads(config.threads);
  graph::Executor ex(net);
  if (config.bn_batches > 0)
    recalibrate_bn(ex, data, config.bn_batches, config.batch_size, config.seed);
  return ex;
}

}  // namespace

AccuracyResult score_subset(const graph::Network& net, const BnRecalConfig& config,
                            const datasets::Split& data) {
  torch::NoGradGuard no_grad;
  graph::Executor ex = prepared(net, config, data);
  const auto e =
      models::evaluate(ex, data.validation, data.mean, data.std, config.validation_images);
  AccuracyResult r;
  r.accuracy = e.accuracy;
  r.loss = e.loss;
  r.images = e.images;
  return r;
}

AccuracyResult timed_evaluation(const std::function<AccuracyResult()>& score) {
  const auto t0 = std::chrono::steady_clock::now();
  AccuracyResult r;
  try {
    r = score();
  } catch (const std::exception& e) {
    r = AccuracyResult{};
    r.error = e.what();
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

AccuracyResult BnRecalEvaluator::evaluate(const policies::CompressedNetwork& candidate,
                                          const graph::Network& /*original*/) {
  return timed_evaluation([&] { return score_subset(candidate.net, config_, data_); });
}

graph::Network BnRecalEvaluator::evaluated_network(const policies::CompressedNetwork& candidate,
                                                   const graph::Network& /*original*/) {
  graph::Network net = candidate.net;
  if (config_.bn_batches == 0) return net;
  prepared(net, config_, data_).write_back(net);
  return net;
}

}  // namespace tightfit::evaluators
