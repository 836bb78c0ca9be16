#pragma once
// Latency lookup tables (NetAdapt, OFA, nn-Meter): every conv/linear configuration a search
// space can reach is timed once on the target, as the fused kernel the target really runs
// (convolution with its BatchNorm and activation); a candidate's latency is then the sum of its
// layers' entries, calibrated by a linear fit against a few whole-network measurements (which
// absorbs pooling, adds and per-network overheads the sum leaves out).

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "latency_models/channel_curve.h"
#include "latency_models/reach.h"
#include "policies/compress.h"
#include "targets/target.h"

namespace tightfit::latency_models {

/// One layer as a target runs it: op, shapes, kernel geometry, what is fused after it and its
/// precision; or one step between layers that a precision change costs (op "quantize": an
/// activation written as u8 codes for int8 layers, "fake_quant": an 8-bit grid applied in fp32),
/// keyed by the activation's channels and size.
struct LayerKey {
  std::string op;  ///< conv2d | linear | quantize | fake_quant
  int64_t in_channels = 0, out_channels = 0, in_h = 1, in_w = 1;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1, groups = 1;
  bool bias = false;
  bool batch_norm = false;  ///< followed by a BatchNorm (folded by fusing targets)
  std::string activation;   ///< relu | relu6 | hardswish | "" (fused by fusing targets)
  bool int8 = false;        ///< runs as a u8 x s8 layer between 8-bit neighbours
  bool bf16 = false;        ///< runs with bf16 inputs and weights (precision "bf16")

  std::string str() const;  ///< canonical key
};

/// The steps of `net` a table sums, as LUT keys: its conv/linear layers (in node order), each in
/// the precision it runs in when `net` runs in `precision` (int8: the layers
/// targets::plan_int8_layers plans, which the oneDNN engine runs in int8; bf16: those
/// targets::plan_bf16_layers plans on this CPU, none without AVX512-BF16), then a step for each
/// activation fake_quant that is not folded into a layer: "fake_quant" where an fp32 consumer
/// reads it, "quantize" where int8 layers read it and no int8 layer before it writes its codes.
std::vector<LayerKey> layer_keys(const graph::Network& net, const std::string& precision = "fp32");

/// Every conv/linear configuration `net` can take within `reach`: each layer with each input and
/// output channel count its channel groups reach (keep fractions rounded to the multiple as
/// policies::channels_to_keep does; depthwise: both tied to one group), and for a layer that
/// may be factorized, the factors policies::factorize makes of each of those at each rank with
/// each of its factorizations (each factor its own key). Duplicates are possible;
/// profile() measures each key once.
std::vector<LayerKey> reachable_layer_keys(const graph::Network& net, const SpaceReach& reach);

/// The table file format this version writes.
inline constexpr int kLutFormatVersion = 2;

/// Name of the layer node in layer_network(): time it with MeasureOptions::kernel = this.
inline constexpr const char* kLayerNode = "layer";

/// A one-layer network that runs `key` (input, layer, optional BN and activation). An int8 key
/// (or precision "int8") reads and writes 8-bit codes as it does inside a fully int8 network: an
/// unsigned 7-bit fake_quant before it, weights on an 8-bit grid, and after it a fake_quant read
/// by a one-channel int8 layer (so a fusing target writes the codes directly). A bf16 key has
/// bfloat16 weights (any other key's are not). A "quantize" key:
/// the input, a u8 fake_quant named kLayerNode and a one-channel int8 layer reading it; a
/// "fake_quant" key: the input and the fake_quant alone.
graph::Network layer_network(const LayerKey& key, const std::string& precision = "fp32");

struct LutContext {
  std::string target;
  std::string precision = "fp32";
  int threads = 1;
  int64_t batch = 1;
  std::string model;       ///< the model it was profiled for (path or zoo name)
  std::string model_hash;  ///< FNV-1a of the model's structure

  /// The context of a table for `net` (named `model`) timed on `target` with `opts`.
  static LutContext of(const std::string& target, const targets::MeasureOptions& opts,
                       const std::string& model, const graph::Network& net);
};

class LookupTable {
 public:
  LookupTable() = default;
  explicit LookupTable(LutContext context) : context_(std::move(context)) {}
  std::string name() const { return "lut:" + context_.target; }
  /// Format of the file it was loaded from (kLutFormatVersion for a new table). Version 1
  /// tables hold neither per-layer precision nor precision-change steps.
  int version() const { return version_; }
  /// Predicted latency per candidate, in ms (lower is better); InputError naming a layer the
  /// table has no entry for.
  std::vector<double> predict(
      const std::vector<const policies::CompressedNetwork*>& candidates) const;

  /// Sum of the layer entries of `net`, in ms; throws InputError naming a missing layer.
  double layer_sum_ms(const graph::Network& net) const;

  const LutContext& context() const { return context_; }
  std::map<std::string, double>& entries() { return entries_; }
  const std::map<std::string, double>& entries() const { return entries_; }
  /// predicted = scale * layer sum + offset_ms (least squares over the calibration points).
  /// Also records the fit's RMSPE on these points (accuracy()).
  void calibrate(const std::vector<double>& layer_sums_ms, const std::vector<double>& measured_ms);
  double scale() const { return scale_; }
  double offset_ms() const { return offset_ms_; }
  /// How well the table predicts whole networks, where known: "calibration_rmspe" (the fit's
  /// error on its own calibration networks) and "check" (`tightfit profile --check`: networks it
  /// was not fitted to). Null for tables written before these were kept.
  nlohmann::json accuracy() const;
  void set_check(const nlohmann::json& check) { check_ = check; }
  /// Latency vs output channels of a few layers (channel_curve.h); empty when not measured.
  std::vector<ChannelCurve>& channel_curves() { return channel_curves_; }
  const std::vector<ChannelCurve>& channel_curves() const { return channel_curves_; }
  /// preferred_multiple() of the curves; 0 when no curves were measured.
  int64_t preferred_channel_multiple() const { return preferred_channel_multiple_; }
  void set_preferred_channel_multiple(int64_t m) { preferred_channel_multiple_ = m; }

  nlohmann::json to_json() const;
  static LookupTable from_json(const nlohmann::json& j, const std::string& where);
  void save(const std::string& path) const;
  /// Loads `path`; a corrupt file, or one made for another target, precision or model
  /// (`expected`, fields left empty are not checked), is an InputError that names the mismatch.
  static LookupTable load(const std::string& path, const LutContext& expected);

 private:
  void fit_line(const std::vector<double>& layer_sums_ms, const std::vector<double>& measured_ms);

  LutContext context_;
  int version_ = kLutFormatVersion;
  std::map<std::string, double> entries_;
  double scale_ = 1.0;
  double offset_ms_ = 0.0;
  double calibration_rmspe_ = -1;  ///< < 0: not known
  nlohmann::json check_;           ///< null: not checked
  std::vector<ChannelCurve> channel_curves_;
  int64_t preferred_channel_multiple_ = 0;
};

/// Fits `table`'s calibration to `networks` measured end to end on `target` (the uncompressed
/// network and a few random policies, say); InputError when a measurement fails.
void calibrate_on(LookupTable& table, const std::vector<policies::CompressedNetwork>& networks,
                  targets::Target& target, const targets::MeasureOptions& opts);

/// Progress of a long profile: called after each new entry with (done, total).
using ProfileProgress = std::function<void(size_t done, size_t total)>;

/// The one way a table is made (`tightfit profile`, a search with a missing table, the latency
/// bench): every layer configuration `net` reaches within `reach` that `table` lacks is timed on
/// `target` with `layer_opts`; then the table is calibrated on `calibration` (policies applied
/// to `net`, measured end to end with `network_opts`).
void build_table(LookupTable& table, const graph::Network& net, const SpaceReach& reach,
                 const std::vector<policies::Policy>& calibration, targets::Target& target,
                 const targets::MeasureOptions& layer_opts,
                 const targets::MeasureOptions& network_opts, const ProfileProgress& on_entry);

/// How well a table predicts whole networks it was not calibrated on.
struct TableCheck {
  int64_t policies = 0;     ///< measured successfully
  double rmspe = 0;         ///< root mean square of (predicted - measured) / measured
  double within_5pct = 0;   ///< share of predictions within 5% of the measurement
  double within_10pct = 0;  ///< and within 10%
  /// (predicted - measured) / measured per policy, in the order checked (NaN where the
  /// measurement failed).
  std::vector<double> errors;
  nlohmann::json to_json() const;  ///< the summary (not the per-policy errors)
};

/// The summary of relative errors `errors` (NaN ones left out).
TableCheck summarize_errors(const std::vector<double>& errors);

/// Measures each of `policies` applied to `net` on `target` and compares the table's prediction;
/// policies whose measurement fails are left out. `on_policy` runs after each (for progress).
TableCheck check_table(const LookupTable& table, const graph::Network& net,
                       const std::vector<policies::Policy>& policies, int64_t multiple,
                       targets::Target& target, const targets::MeasureOptions& opts,
                       const std::function<void(size_t done)>& on_policy = {});

/// Times every key not yet in `table` on `target`; `on_entry` runs after each new entry (for
/// progress and for saving partial tables, so an interrupted profile resumes).
void profile(LookupTable& table, const std::vector<LayerKey>& keys, targets::Target& target,
             const targets::MeasureOptions& opts,
             const std::function<void(size_t done, size_t total)>& on_entry);

}  // namespace tightfit::latency_models
