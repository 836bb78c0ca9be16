#pragma once
// The search configuration file, parsed strictly: every section rejects unknown keys and lists
// the valid ones. Sections: seed, model, data, space, strategy, evaluator, target, cost, budget,
// baselines, cache, finetune_front, screen, outputs.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "datasets/dataset.h"
#include "graph/network.h"
#include "latency_models/cost_model.h"
#include "search/space.h"
#include "targets/target.h"

namespace tightfit::search {

/// Hard limits a candidate must meet (0: no limit on that measure).
struct Budget {
  double latency_ms = 0;
  int64_t size_bytes = 0;
  int64_t flops = 0;
  double accuracy_drop = 0;  ///< below the uncompressed network's accuracy, in [0, 1]
  /// Limits relative to the uncompressed network on the same target and cost model, in (0, 1]
  /// ("twice as fast": latency_fraction 0.5); with an absolute limit on the same quantity, the
  /// stricter one holds.
  double latency_fraction = 0;
  double size_fraction = 0;
  double flops_fraction = 0;

  template <typename Fields>
  void fields(Fields& f) {
    f("latency_ms", latency_ms);
    f("size_bytes", size_bytes);
    f("flops", flops);
    f("accuracy_drop", accuracy_drop);
    f("latency_fraction", latency_fraction);
    f("size_fraction", size_fraction);
    f("flops_fraction", flops_fraction);
  }
  bool any() const {
    return latency_ms > 0 || size_bytes > 0 || flops > 0 || accuracy_drop > 0 || relative();
  }
  /// Whether a limit is relative (needs the uncompressed network's costs).
  bool relative() const { return latency_fraction > 0 || size_fraction > 0 || flops_fraction > 0; }
  /// The absolute limits for an uncompressed network of these costs: each fraction times the
  /// network's own figure, or the absolute limit where that is stricter. The fractions stay set
  /// (for the record); within_budget reads the absolute limits only.
  Budget resolved(double base_latency_ms, int64_t base_size_bytes, int64_t base_flops) const;
  static Budget from_json(const nlohmann::json& j, const std::string& where);
  /// The limits that are set (0 means none).
  nlohmann::json to_json() const;
};

/// The front fine-tune a search runs unless told otherwise: the 5 members the proxy scores
/// highest, 20 steps of 64 images each, scored on 1000 validation images.
inline constexpr int64_t kFrontTopK = 5;
inline const nlohmann::json kFrontFinetuneDefaults = {
    {"steps", 20}, {"train_batch_size", 64}, {"validation_images", 1000}};

struct SearchConfig {
  uint64_t seed = 1;                      ///< drives every random choice of the run (invariant 5)
  std::string model_path;                 ///< tightfit network file (from `tightfit train`)
  std::string model_zoo;                  ///< zoo name, used with random weights when no path
  graph::Shape model_input_shape;         ///< C x H x W a TorchScript model is traced with
  std::string dataset = "fashion-mnist";  ///< the data set's name (datasets/dataset.h)
  /// Its own settings (Fashion-MNIST: "dir", default the Debian package's folder).
  nlohmann::json dataset_config = nlohmann::json::object();
  int64_t validation_count = 5000;  ///< images held out of the training set
  SpaceConfig space;
  std::string strategy = "random";
  nlohmann::json strategy_config = nlohmann::json::object();
  int64_t ask_batch = 4;  ///< policies asked for at a time
  std::string evaluator = "bn-recal";
  /// Candidates scored for accuracy at once (a TBB pool; evaluator "parallel"), each with the
  /// evaluator's own thread count. Latency is always timed one candidate at a time.
  int64_t parallel_evaluations = 1;
  nlohmann::json evaluator_config = nlohmann::json::object();
  std::string target = "cpu-libtorch";
  targets::MeasureOptions measure;
  /// Latency during the search (latency_models/cost_model.h): "measure" (timed on the target:
  /// slow, exclusive) or "lut" (predicted by the target's latency table, profiled first when it
  /// is missing); predicted latencies are measured end to end for the front at the end.
  latency_models::CostSection cost;
  /// Evaluation cache shared across runs (JSON lines; "" = this run's own only).
  std::string cache_path;
  Budget budget;
  /// Uniform baselines evaluated first: the same keep fraction everywhere, at full precision,
  /// and each of these fractions again with 8-bit weights when the space has 8 bits.
  std::vector<double> baseline_keep = {0.25, 0.5, 0.75};
  /// "finetune_front": the proxy's fidelity, on by default. The front_top_k front members the
  /// proxy scores highest are fine-tuned briefly at the end with `finetune_front` (`finetune`
  /// evaluator settings over kFrontFinetuneDefaults); their accuracy after is recorded beside
  /// the proxy's, and the proxy's rank agreement with it (Kendall's tau, Spearman's rho) is
  /// reported (context "front_fidelity"). "top_k" in the section sets k; top_k 0, steps 0 or
  /// null turn it off.
  int64_t front_top_k = kFrontTopK;
  nlohmann::json finetune_front = kFrontFinetuneDefaults;
  bool front_fidelity() const { return front_top_k > 0; }
  /// "screen": a learned accuracy predictor pre-screens search candidates (search/screen.h);
  /// null: off.
  nlohmann::json screen;
  /// "outputs": {"export": "torchscript"} also writes every front member as models/<#>.pt
  /// (models/torchscript.h); "" (the default): the .tfn files only.
  std::string export_format;

  nlohmann::json raw;  ///< the file as read
  std::string hash;    ///< FNV-1a of the canonical JSON of `raw`

  /// The network the config names: the file at model_path, else the zoo model (random weights).
  graph::Network load_network() const;
  /// The data set with validation_count training images held out.
  datasets::Split load_data() const;

  static SearchConfig from_json(const nlohmann::json& j, const std::string& where);
  static SearchConfig load(const std::string& path);
};

}  // namespace tightfit::search
