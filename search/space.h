#pragma once
// The search space: every decision point of a network with the values it may take, and the
// genome that encodes one choice per decision.
//
// A space has up to five dimensions: the fraction of channels kept per channel group, and per
// conv/linear layer the weight bits, the activation bits, the rank (fraction of the full rank
// kept; 1.0 = not factorized) and the unstructured sparsity. `kind` picks which of them vary
// (joint: all; pruning: keep; quantization: bits; lowrank: rank), so one config file gives the
// four classic spaces. Per-layer overrides narrow a layer's values or exclude the layer.
//
// Each (decision point, dimension) gets a slot with its allowed values for that point, sorted
// from least to most compression (so index 0 is "uncompressed" whenever that value is allowed).
// Slots with >= 2 values are the genes; a Genome holds one choice index per gene, and decode()
// turns it into a Policy. Slots with one value are fixed and applied to every policy.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "latency_models/reach.h"
#include "policies/policy.h"

namespace tightfit::search {

/// `"channel_multiple": "auto"`: the multiple the target's measured latency curves prefer
/// (latency_models/channel_curve.h), resolved by `tightfit profile` and by a search (Session)
/// before a space is built on it.
inline constexpr int64_t kAutoChannelMultiple = 0;

/// What a space lets vary: "joint" (every dimension listed), "pruning" (keep), "quantization"
/// (weight and activation bits), "lowrank" (rank).
inline const std::vector<std::string> kSpaceKinds = {"joint", "pruning", "quantization", "lowrank"};

/// Per-layer narrowing of the space; absent lists mean "the global list".
struct LayerOverride {
  bool exclude = false;  ///< left uncompressed (and the channel groups it produces kept whole)
  std::optional<std::vector<double>> keep;  ///< for the channel groups this layer produces
  std::optional<std::vector<int>> weight_bits;
  std::optional<std::vector<int>> act_bits;
  std::optional<std::vector<double>> rank;
  std::optional<std::vector<double>> sparsity;
  std::optional<std::vector<std::string>> criterion;  ///< for the groups this layer produces
  std::optional<std::vector<std::string>> scheme;
  std::optional<std::vector<std::string>> factorization;

  template <typename Fields>
  void fields(Fields& f) {
    f("keep", keep);
    f("weight_bits", weight_bits);
    f("act_bits", act_bits);
    f("rank", rank);
    f("sparsity", sparsity);
    f("criterion", criterion);
    f("scheme", scheme);
    f("factorization", factorization);
  }
  nlohmann::json to_json() const;
};

struct SpaceConfig {
  std::vector<double> keep = {0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0};  ///< fractions kept
  std::vector<int> weight_bits = {32, 8};  ///< allowed weight bit-widths
  std::vector<int> act_bits = {32};        ///< allowed bit-widths of layer inputs
  std::vector<double> rank = {1.0};        ///< fractions of the full rank; 1.0 = not factorized
  std::vector<double> sparsity = {0.0};    ///< shares of weights zeroed, [0, 1)
  /// Methods as genes: the channel criteria a pruned group may be ranked by, the schemes a
  /// quantized layer's weights may use, the factorizations a factorized conv may take. One
  /// value: the method of every policy; several: a gene per decision point that uses it.
  std::vector<std::string> criterion = {"l1"};
  std::vector<std::string> scheme = {"symmetric"};
  std::vector<std::string> factorization = {"tucker2"};
  /// What 16 weight bits mean: "fp16" or "bf16" (which cpu-onednn's bf16 precision executes).
  std::string float16 = "fp16";
  std::string kind = "joint";  ///< one of kSpaceKinds
  /// Kept channels rounded to this multiple; kAutoChannelMultiple ("auto" in JSON) until resolved.
  int64_t channel_multiple = 8;
  /// layer name -> override; "exclude" in JSON for {exclude: true}.
  std::map<std::string, LayerOverride> overrides;
  /// HAQ's convention: > 0 pins the first and last conv/linear layer at these weight bits (and
  /// activation bits when the space searches them); 0 = off. Explicit overrides win.
  int pin_first_last_bits = 0;

  /// The plain keys; "channel_multiple" (a number or "auto") and "overrides" (per layer) are
  /// read by from_json itself.
  template <typename Fields>
  void fields(Fields& f) {
    f("keep", keep);
    f("weight_bits", weight_bits);
    f("act_bits", act_bits);
    f("rank", rank);
    f("sparsity", sparsity);
    f("criterion", criterion);
    f("scheme", scheme);
    f("factorization", factorization);
    f("float16", float16);
    f("kind", kind);
    f("pin_first_last_bits", pin_first_last_bits);
  }
  static SpaceConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
  /// channel_multiple, or a ConfigError naming `where` when it is still "auto".
  int64_t resolved_channel_multiple(const std::string& where) const;
};

/// One choice index per gene, each in [0, SearchSpace::choices(gene)).
using Genome = std::vector<int>;

class SearchSpace {
 public:
  /// The dimensions of a slot: five numeric ones and three methods (a choice among names).
  enum class Dim {
    kKeep,
    kWeightBits,
    kActBits,
    kRank,
    kSparsity,
    kCriterion,
    kScheme,
    kFactorization
  };

  /// A config whose channel_multiple is still "auto", an override naming an unknown layer, or a
  /// space where nothing can vary is a ConfigError.
  SearchSpace(const policies::DecisionPoints& points, SpaceConfig config);

  const policies::DecisionPoints& points() const { return points_; }
  const SpaceConfig& config() const { return config_; }

  size_t num_genes() const { return genes_.size(); }
  /// Number of values gene `gene` can take (>= 2).
  int choices(size_t gene) const;
  /// "<decision point>/<dimension>", e.g. "layer1.0.conv1/weight_bits".
  std::string gene_name(size_t gene) const;
  Dim gene_dim(size_t gene) const;
  /// The value choice `choice` of `gene` stands for (a fraction or a bit-width; for a method,
  /// the index of its name).
  double gene_value(size_t gene, int choice) const;
  /// The method name choice `choice` of a method gene stands for ("" for numeric genes).
  std::string gene_name_value(size_t gene, int choice) const;
  /// Every method of `dim` (kCriterion, kScheme, kFactorization) that some gene chooses among,
  /// sorted; empty when no gene varies it.
  std::vector<std::string> method_names(Dim dim) const;

  /// The policy a genome encodes. A layer both factorized and sparsified keeps only its rank
  /// (policies reject both on one layer).
  policies::Policy decode(const Genome& genome) const;
  /// Every gene at its least-compressing choice: the empty policy when the space allows
  /// "uncompressed" everywhere.
  Genome identity_genome() const { return Genome(genes_.size(), 0); }
  /// Every gene drawn uniformly.
  Genome sample_genome(std::mt19937_64& rng) const;
  /// Every gene drawn near one compression level: gene g takes the choice nearest to
  /// level x (choices(g) - 1) plus Gaussian noise of `spread` x (choices(g) - 1), clamped.
  /// level 0 is the least compression, 1 the most. Independent uniform genes average out, so
  /// their networks cluster at medium latency and size; genomes drawn at levels spread over
  /// [0, 1] cover the whole range, which is what a front needs.
  Genome sample_genome_near(double level, double spread, std::mt19937_64& rng) const;
  /// The same value everywhere, for uniform baselines: each gene takes its allowed value nearest
  /// to the one asked (bits by value, fractions by value).
  Genome uniform_genome(double keep, int weight_bits, int act_bits = 32, double rank = 1.0,
                        double sparsity = 0.0) const;

  /// decode(sample_genome(rng)).
  policies::Policy sample(std::mt19937_64& rng) const;
  /// The whole networks a latency table is calibrated on: the uncompressed one, the space's
  /// most compressed one, its smallest fp32 one (the least keep fraction everywhere), then
  /// `random` sample()s; the extremes anchor the fit at both ends of the range a front spans.
  std::vector<policies::Policy> latency_calibration(std::mt19937_64& rng, int random) const;
  /// sample() without weight and activation bits (nor schemes): whole networks of one
  /// precision.
  policies::Policy sample_one_precision(std::mt19937_64& rng) const;
  /// The same keep fraction, weight bits and input bits on every decision point, ignoring the
  /// space's lists.
  policies::Policy uniform(double keep, int bits, int act_bits = 32) const;
  /// What the space's policies can make of the layers, for a latency table to cover: every keep
  /// fraction of any channel group, the channel multiple, each layer's ranks and
  /// factorizations, and whether activations may be quantized and layers run in int8.
  latency_models::SpaceReach reach() const;

 private:
  struct Slot {
    Dim dim;
    std::string point;               ///< group id or layer name
    std::vector<double> values;      ///< least compression first; size >= 1
    std::vector<std::string> names;  ///< methods: the name of each value (values are 0, 1, ...)
  };
  /// The global method fields of every policy of the space (a method listed alone).
  void set_global_methods(policies::Policy& p) const;

  policies::DecisionPoints points_;
  SpaceConfig config_;
  std::vector<Slot> slots_;
  std::vector<size_t> genes_;      ///< slot index of each gene
  std::vector<int> gene_of_slot_;  ///< gene index of each slot, -1 for fixed slots
};

/// Name of a dimension as configs spell it ("keep", "weight_bits", ...).
std::string dim_name(SearchSpace::Dim dim);

}  // namespace tightfit::search
