#pragma once
// `pruningnet`: MetaPruning's accuracy proxy (Liu et al., "MetaPruning: Meta Learning for
// Automatic Neural Network Channel Pruning", ICCV 2019). A PruningNet is a meta network that,
// given the channel configuration of a network (the "network encoding"), generates the weights
// of every layer. It is trained once per network by sampling a random channel configuration at
// every step, generating and cropping the weights, running the pruned network and
// back-propagating the loss into the generators; afterwards any candidate is scored with
// generated weights and recalibrated BatchNorm statistics, without training it.
//
// See pruningnet.cpp for how the generators, the cropping and the file are laid out.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "datasets/fashion_mnist.h"
#include "evaluators/evaluator.h"
#include "graph/network.h"
#include "policies/compress.h"
#include "policies/policy.h"

namespace tightfit::evaluators {

/// The shape of a PruningNet and the channel configurations it is trained on (stored in its file).
struct PruningNetConfig {
  int64_t hidden = 32;  ///< hidden units of each layer's generator (encoding -> hidden -> weight)
  /// Keep fractions a training step draws from, independently per decision point (the default
  /// search space's list).
  std::vector<double> keep = {0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0};
  int64_t channel_multiple = 1;  ///< kept channels rounded as policies::channels_to_keep does
  /// How a training step draws its configuration (positions in `keep`, one per decision point):
  ///   "layerwise"  every decision point independently and uniformly (the paper). The network's
  ///                overall width then concentrates in the middle of the list: the widest and
  ///                narrowest networks are rarely trained, and a short training scores them low
  ///                (the full-width network below 75%-FLOPs ones).
  ///   "banded"     a centre position uniformly, then every decision point uniformly within
  ///                `band` positions of it (clipped to the list): overall widths spread evenly
  ///                from narrowest to widest while layers still vary against each other.
  std::string sampling = "banded";
  int64_t band = 2;  ///< "banded": how far (in list positions) a layer strays from the centre
  /// Every step also trains the full-width network on the same batch (the largest network of
  /// the sandwich rule, Yu & Huang 2019, slimmable networks), at twice the cost of a step.
  bool sandwich = false;

  template <typename Fields>
  void fields(Fields& f) {
    f("hidden", hidden);
    f("keep", keep);
    f("channel_multiple", channel_multiple);
    f("sampling", sampling);
    f("band", band);
    f("sandwich", sandwich);
  }
  /// Strict: unknown keys, wrong types and values out of range are ConfigErrors naming `where`.
  /// A missing "sampling" reads as "layerwise" and a missing "sandwich" as false: what files
  /// written before the keys existed were trained with.
  static PruningNetConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
};

/// One training step's configuration under `config.sampling`: a position in `config.keep` for
/// each of `points` decision points.
std::vector<size_t> sample_keep_positions(const PruningNetConfig& config, size_t points,
                                          std::mt19937_64& rng);

/// How a PruningNet is trained: Adam, linear warm-up then cosine decay of the learning rate.
struct PruningNetTrainOptions {
  int64_t steps = 1000;           ///< training steps, one random channel configuration each
  int64_t batch_size = 128;       ///< images per step
  double lr = 1e-3;               ///< peak learning rate (Adam)
  double warmup_fraction = 0.05;  ///< share of steps with linear warm-up
  uint64_t seed = 1;              ///< configurations, shuffling, dropout
  int threads = 2;                ///< LibTorch intra-op threads
  bool progress = true;           ///< progress lines on stderr
};

struct PruningNetTrainResult {
  std::vector<double> step_loss;  ///< cross-entropy of every step, in order
  double seconds = 0;
  /// Mean loss of the first / last `window` steps (fewer when there are fewer steps).
  double first_window(int64_t window) const;
  double last_window(int64_t window) const;
};

/// What a PruningNet file says about itself (read without loading the parameters).
struct PruningNetInfo {
  std::string network_hash;  ///< network_hash() of the network it was trained for
  std::string params_hash;   ///< FNV-1a of its parameters: changes whenever it is retrained
  PruningNetConfig config;
  std::map<std::string, std::string> meta;  ///< model, steps, loss, ... (free-form)
};

/// Identity of a network for PruningNet files: structure (nodes, attributes, parameter shapes)
/// and weights, as 16 hex digits.
std::string network_hash(const graph::Network& net);

class PruningNet {
 public:
  /// A fresh PruningNet for `original`: generators start from its weights (seeded, see
  /// pruningnet.cpp). Throws ConfigError on a bad config and InputError when `original` has no
  /// channel decision point.
  PruningNet(const graph::Network& original, PruningNetConfig config = {}, uint64_t seed = 1);
  ~PruningNet();
  PruningNet(PruningNet&&) noexcept;
  PruningNet& operator=(PruningNet&&) noexcept;

  /// Trains the generators and shared parameters on `data.train`. Throws ConfigError on bad
  /// options (steps, batch_size < 1, lr <= 0).
  PruningNetTrainResult train(const datasets::Split& data, const PruningNetTrainOptions& opts);

  /// The pruned network with generated weights: `kept_channels` maps decision points to channels
  /// kept (absent: all). Channels are kept by position (the first k of each group, as the paper
  /// crops), whichever channels a pruning criterion would have chosen. BatchNorm running
  /// statistics are the original's, cropped: recalibrate them before scoring. Throws InputError
  /// on an unknown decision point or a count outside [1, channels].
  graph::Network generate(const std::map<std::string, int64_t>& kept_channels) const;
  /// Same for a keep-only policy (keep, keep_count; channel_multiple of the config). Throws
  /// InputError when the policy also sets bits, ranks or sparsity: apply those to the generated
  /// network with policies::apply.
  graph::Network generate(const policies::Policy& policy) const;

  /// Channels kept per decision point by the policy's keep / keep_count (all when absent).
  std::map<std::string, int64_t> kept_channels(const policies::Policy& policy) const;

  const std::vector<policies::ChannelDecision>& decision_points() const;
  const PruningNetConfig& config() const;
  const std::string& network_hash() const;
  int64_t num_params() const;  ///< trainable floats: generators and shared parameters
  /// Free-form provenance written to the file (model, steps, loss, ...).
  std::map<std::string, std::string>& meta();
  const std::map<std::string, std::string>& meta() const;

  /// Writes the PruningNet file (magic "TFITPNT1", JSON header, float32 data, CRC-32).
  void save(const std::string& path) const;
  /// Reads a PruningNet file for `original`. Throws InputError on a missing, truncated, corrupted
  /// or foreign file, and when the file was trained for another network.
  static PruningNet load(const std::string& path, const graph::Network& original);
  /// Reads only the header of a PruningNet file; throws InputError like load().
  static PruningNetInfo read_info(const std::string& path);

 private:
  struct Impl;
  explicit PruningNet(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct PruningNetEvaluatorConfig {
  std::string path;          ///< the PruningNet file (`tightfit metaprune train --out`); required
  int64_t bn_batches = 10;   ///< training batches to re-estimate BN statistics
  int64_t batch_size = 128;  ///< images per recalibration batch
  int64_t validation_images = 2000;  ///< first N validation images scored
  uint64_t seed = 7;  ///< which training images recalibrate and calibrate (same for all)
  int threads = 1;    ///< LibTorch threads for evaluation

  /// Strict; a missing `path` or a file that does not exist is a ConfigError with the fix.
  static PruningNetEvaluatorConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
};

/// Scores a candidate with PruningNet-generated weights for its kept channels, BN recalibrated,
/// on the validation subset. Bits, ranks and sparsity of the candidate's policy are applied to
/// the generated network (policies::apply) and BN is recalibrated again. A candidate it cannot
/// score is an error result; a PruningNet file trained for another network than `original` is a
/// user mistake and throws InputError (every candidate would fail the same way).
class PruningNetEvaluator : public AccuracyEvaluator {
 public:
  PruningNetEvaluator(PruningNetEvaluatorConfig config, const datasets::Split& data);
  std::string name() const override { return "pruningnet"; }
  nlohmann::json settings() const override;
  AccuracyResult evaluate(const policies::CompressedNetwork& candidate,
                          const graph::Network& original) override;

 private:
  /// The PruningNet for `original`, loaded on first use (thread-safe).
  const PruningNet& pruningnet_for(const graph::Network& original);

  PruningNetEvaluatorConfig config_;
  const datasets::Split& data_;
  PruningNetInfo info_;
  std::mutex mutex_;
  std::unique_ptr<PruningNet> pruningnet_;
};

}  // namespace tightfit::evaluators
