#pragma once
// Cost models: what a candidate's latency is, behind one interface, so that the search neither
// knows nor branches on where the figure comes from. Each model is one file under
// latency_models/ and is built by name from the `cost` section of a config:
//
//   measure   every candidate timed on the target (exact, slow, exclusive: invariant 3)
//   lut       a lookup table profiled on the target (NetAdapt, OFA): layer entries summed and
//             calibrated on whole networks; profiled first when the table file is missing
//   roofline  analytic: compute over the precision's peak or bytes over bandwidth, per layer,
//             with this machine's figures measured or the config's "device" figures
//   bitfusion analytic: a bit-serial accelerator (HAQ's hardware), from "device" figures
//
// A model that predicts (does not time) leaves the front to be measured end to end at the end of
// a search; `describe()` is the model's context for results and cache keys.

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "latency_models/channel_curve.h"
#include "latency_models/reach.h"
#include "policies/compress.h"
#include "targets/target.h"

namespace tightfit::latency_models {

/// One latency figure.
struct LatencyEstimate {
  double ms = 0;         ///< median time (measured) or prediction per batch; lower is better
  double spread_ms = 0;  ///< interquartile range of the timed runs; 0 for predictions
  std::string error;     ///< non-empty: no figure, and why
  bool ok() const { return error.empty(); }
};

class CostModel {
 public:
  virtual ~CostModel() = default;
  /// The config name: "measure", "lut".
  virtual std::string name() const = 0;
  /// How an evaluation's latency came about, as the journal records it: "measured", "lut" or
  /// "modelled".
  virtual std::string source() const = 0;
  /// True when predict() runs on the target: it must then not share the device (invariant 3).
  virtual bool times_on_target() const = 0;
  /// Latency of each candidate, in the order given; a failure is an estimate with its error.
  virtual std::vector<LatencyEstimate> predict(
      const std::vector<const policies::CompressedNetwork*>& candidates) = 0;
  /// What a figure depends on besides the candidate and the target (table path, entries,
  /// calibration): recorded in results' context.
  virtual nlohmann::json describe() const = 0;
  /// The model's own accuracy against measurements where it has one (a table's calibration
  /// error and check), else null.
  virtual nlohmann::json accuracy() const { return nullptr; }
  /// A hash of what changes its figures besides the target and protocol ("" for a measurement):
  /// part of the evaluation cache's key.
  virtual std::string fingerprint() const = 0;
};

/// Everything a cost model may need to build itself; factories take what they use.
struct CostContext {
  targets::Target* target = nullptr;  ///< where latency is measured or was profiled
  targets::MeasureOptions measure;    ///< the measurement protocol of the run
  const graph::Network* net = nullptr;
  std::string model;  ///< how the config names the network (path or zoo name)
  SpaceReach reach;   ///< what the search space lets the layers become
  /// Latency curves already measured (to resolve "auto"): a table profiled now keeps them.
  std::vector<ChannelCurve> channel_curves;
  /// Policies whose whole-network times calibrate a new table (the identity first).
  std::function<std::vector<policies::Policy>()> calibration_policies;
  std::function<void(const std::string&)> say;  ///< progress on stderr
};

/// The `cost` section of a search config, parsed and checked before anything is loaded:
/// {"latency": "measure" | "lut" | "roofline" | "bitfusion", "table": PATH, "device": {...}}.
struct CostSection {
  std::string latency = "measure";  ///< the cost model's name
  std::string table;                ///< lut: the table file (profiled there when missing)
  /// roofline, bitfusion: the device's figures (analytic.h); absent roofline figures measured
  nlohmann::json device = nlohmann::json::object();
  nlohmann::json raw = nlohmann::json::object();  ///< the section as written

  template <typename Fields>
  void fields(Fields& f) {
    f("latency", latency);
    f("table", table);
    f("device", device);
  }

  static CostSection from_json(const nlohmann::json& j, const std::string& where);
};

/// Builds the cost model `section.latency` names.
std::unique_ptr<CostModel> make_cost_model(const CostSection& section, const CostContext& context);
std::vector<std::string> cost_model_names();

}  // namespace tightfit::latency_models
