#pragma once
// What a search, `tightfit fidelity`, the one-policy commands (`compress`, `finetune`) and the
// benches share, built once from a parsed config:
// the network, its decision points and the search space, the data and the calibration batches
// drawn from it, the target, the accuracy evaluator and the cost model. Each part is opened by
// its own call, in the order a command needs them, so cheap checks (the space against the
// network, the target's precision, a strategy's config) come before expensive work (loading
// data, profiling a latency table).

#include <functional>
#include <memory>
#include <string>

#include "datasets/fashion_mnist.h"
#include "evaluators/evaluator.h"
#include "latency_models/channel_curve.h"
#include "latency_models/cost_model.h"
#include "policies/compress.h"
#include "search/config.h"
#include "search/space.h"
#include "targets/target.h"

namespace tightfit::search {

/// Progress lines for stderr ("" prefix added by the caller's printer).
using Say = std::function<void(const std::string&)>;

struct Session {
  /// Loads the network the config names and builds its search space. A space whose
  /// channel_multiple is "auto" is built with a multiple of 1 for the config checks until
  /// resolve_channel_multiple() runs.
  explicit Session(const SearchConfig& config);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// The config's target; ConfigError when it does not run the config's precision.
  void open_target();
  /// The data set, and the calibration batches every policy is applied with (drawn once from
  /// the config's seed, so a policy compresses to the same network every time; none when
  /// `calibration_batches` is 0).
  void load_data(int64_t calibration_batches = evaluators::kCalibrationBatches,
                 int64_t calibration_batch_size = evaluators::kCalibrationBatchSize);
  /// The config's accuracy evaluator on the data (load_data() first).
  void open_evaluator();
  /// `"channel_multiple": "auto"` made a number (nothing to do for a number): the preferred
  /// multiple of the cost model's latency table when it has one, else of latency curves of the
  /// network's largest layers measured now on the target (opened when it is not); the space is
  /// rebuilt on it. Before apply() and open_cost_model().
  void resolve_channel_multiple(const Say& say);
  /// The config's cost model (open_target() first); a missing latency table is profiled.
  void open_cost_model(const Say& say);

  /// `policy` applied to the network with the run's channel rounding and calibration batches;
  /// a ConfigError while the channel multiple is still "auto".
  policies::CompressedNetwork apply(const policies::Policy& policy) const;
  /// How the config names the network: its file or its zoo name.
  std::string model_name() const;

  const SearchConfig config;
  graph::Network net;
  policies::DecisionPoints points;
  SearchSpace space;
  datasets::Split data;
  policies::Calibration calibration;
  policies::ApplyOptions apply_opts;
  /// The multiple kept channels are rounded to: the config's, or what "auto" resolved to
  /// (kAutoChannelMultiple until then).
  int64_t channel_multiple = kAutoChannelMultiple;
  /// How "auto" was resolved, for the results' context (null for a number in the config).
  nlohmann::json channel_multiple_source;
  /// Latency curves measured to resolve "auto" (a latency table profiled by this run keeps them).
  std::vector<latency_models::ChannelCurve> channel_curves;
  std::unique_ptr<targets::Target> target;
  std::unique_ptr<evaluators::AccuracyEvaluator> evaluator;
  std::unique_ptr<latency_models::CostModel> cost;
};

/// The config a one-policy command's arguments amount to: the network `model` names (a file or
/// a zoo name), Fashion-MNIST from `data_dir`, kept channels rounded to `channel_multiple`, and
/// `seed` for the calibration batches and the policy's own randomness.
SearchConfig policy_command_config(const std::string& model, const std::string& data_dir,
                                   int64_t channel_multiple, uint64_t seed);

}  // namespace tightfit::search
