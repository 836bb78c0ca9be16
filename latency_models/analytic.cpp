#include "latency_models/analytic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "core/errors.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/timing.h"
#include "latency_models/lut.h"

namespace tightfit::latency_models {

namespace {

/// What one conv/linear layer does per image: MACs, bytes of weights as stored, activation
/// elements in and out, and its bit-widths.
struct LayerWork {
  double macs = 0;
  double weight_bytes = 0;
  double in_elements = 0, out_elements = 0;
  int weight_bits = 32, act_bits = 32;
};

std::vector<LayerWork> layer_work(const policies::CompressedNetwork& c) {
  const auto shapes = graph::infer_shapes(c.net);
  std::vector<LayerWork> out;
  for (int i = 0; i < c.net.size(); ++i) {
    const auto& node = c.net.node(i);
    if (!graph::has_weights(node.op)) continue;
    LayerWork w;
    const auto& weight = node.params.at("weight");
    double positions = 1;
    if (node.op == graph::OpKind::kConv2d)
      positions = static_cast<double>(shapes[i][1] * shapes[i][2]);
    w.macs = static_cast<double>(weight.numel()) * positions;
    auto numel = [](const graph::Shape& s) {
      double n = 1;
      for (int64_t d : s) n *= static_cast<double>(d);
      return n;
    };
    w.in_elements = numel(shapes[node.inputs[0]]);
    w.out_elements = numel(shapes[i]);
    auto info = c.layers.find(node.name);
    if (info != c.layers.end()) {
      w.weight_bits = info->second.weight_bits;
      w.act_bits = info->second.act_bits;
      w.weight_bytes = static_cast<double>(info->second.weight_bytes());
    } else {
      w.weight_bytes = 4.0 * static_cast<double>(weight.numel());
    }
    out.push_back(w);
  }
  return out;
}

targets::Measurement modelled(const std::string& target, const std::string& precision,
                              const targets::MeasureOptions& opts) {
  targets::Measurement m;
  m.target = target;
  m.precision = precision;
  m.threads = opts.threads;
  m.batch = opts.batch;
  m.modelled = true;
  m.samples = 1;
  m.attempts = 1;
  return m;
}

}  // namespace

double roofline_ms(const policies::CompressedNetwork& c, const RooflineSpec& spec,
                   const targets::MeasureOptions& opts) {
  double seconds = 0;
  for (const auto& w : layer_work(c)) {
    // The layer runs at the precision its weights allow, capped by what was asked for.
    double peak = spec.fp32_gflops;
    if (opts.precision == "int8" && w.weight_bits <= 8)
      peak = spec.int8_gops;
    else if (opts.precision != "fp32" && w.weight_bits <= 16)
      peak = spec.fp16_gflops;
    const double act_bytes_per = std::min(w.act_bits, 32) / 8.0;
    const double bytes = w.weight_bytes + (w.in_elements + w.out_elements) * act_bytes_per *
                                              static_cast<double>(opts.batch);
    const double compute = 2.0 * w.macs * static_cast<double>(opts.batch) / (peak * 1e9);
    const double memory = bytes / (spec.bandwidth_gbps * 1e9);
    seconds += std::max(compute, memory);
  }
  return seconds * 1e3;
}

double bitfusion_ms(const policies::CompressedNetwork& c, const BitFusionSpec& spec,
                    const targets::MeasureOptions& opts) {
  constexpr int kBrickBits = 2;
  constexpr int kMaxBits = 16;  // wider operands are not supported by the fusion array
  double seconds = 0;
  for (const auto& w : layer_work(c)) {
    const int wb = std::min(w.weight_bits, kMaxBits);
    const int ab = std::min(w.act_bits, kMaxBits);
    const double bricks_per_mac = std::ceil(static_cast<double>(wb) / kBrickBits) *
                                  std::ceil(static_cast<double>(ab) / kBrickBits);
    const double compute = w.macs * static_cast<double>(opts.batch) * bricks_per_mac /
                           (spec.bricks * spec.clock_mhz * 1e6);
    const double bytes = w.weight_bytes + (w.in_elements + w.out_elements) * ab / 8.0 *
                                              static_cast<double>(opts.batch);
    const double memory = bytes / (spec.bandwidth_gbps * 1e9);
    seconds += std::max(compute, memory);
  }
  return seconds * 1e3;
}

// ------------------------------------------------------------------------------- device figures

namespace {

/// A compute-bound convolution (64 -> 64 channels, 3x3, 28x28: about 58 MFLOP) as a one-layer
/// network: its fp32 time gives the core's peak, its int8 time the int8 speed-up.
LayerKey peak_layer() {
  LayerKey k;
  k.op = "conv2d";
  k.in_channels = k.out_channels = 64;
  k.in_h = k.in_w = 28;
  k.kernel_h = k.kernel_w = 3;
  k.pad_h = k.pad_w = 1;
  return k;
}

/// Timed ms of `key` at `precision` on cpu-onednn (one thread), its own kernel only.
double layer_ms(targets::Target& onednn, const LayerKey& key, const std::string& precision) {
  policies::CompressedNetwork c;
  c.net = layer_network(key, precision);
  targets::MeasureOptions opts;
  opts.precision = precision;
  opts.kernel = kLayerNode;
  opts.min_time_ms = 50;
  const auto m = onednn.measure(c, opts);
  if (!m.ok() || !(m.median_ms > 0))
    throw InputError("measuring this CPU's peak for the roofline model failed (" + m.error +
                     "); give fp32_gflops, int8_gops and bandwidth_gbps in its config");
  return m.median_ms;
}

/// Copy bandwidth of one core in GB/s: a buffer well beyond the caches copied a few times, the
/// fastest pass counted (read and write both move bytes).
double copy_bandwidth_gbps() {
  constexpr size_t kBytes = size_t{64} << 20;
  constexpr int kPasses = 4;
  std::vector<char> src(kBytes, 1), dst(kBytes, 0);
  double best_s = 1e9;
  for (int pass = 0; pass < kPasses; ++pass) {
    const auto t0 = Clock::now();
    std::memcpy(dst.data(), src.data(), kBytes);
    best_s = std::min(best_s, seconds_since(t0));
    src[static_cast<size_t>(pass)] =
        dst[kBytes - 1 - static_cast<size_t>(pass)];  // keep the copy live
  }
  return 2.0 * static_cast<double>(kBytes) / best_s / 1e9;
}

struct MeasuredFigures {
  double fp32_gflops = 0, int8_gops = 0, bandwidth_gbps = 0;
};

const MeasuredFigures& measured_figures() {
  static std::once_flag once;
  static MeasuredFigures f;
  std::call_once(once, [] {
    auto onednn = targets::make_target("cpu-onednn");
    const LayerKey key = peak_layer();
    const double flops =
        2.0 * static_cast<double>(key.in_channels * key.out_channels * key.kernel_h * key.kernel_w *
                                  key.in_h * key.in_w);
    const double fp32_ms = layer_ms(*onednn, key, "fp32");
    const double int8_ms = layer_ms(*onednn, key, "int8");
    f.fp32_gflops = flops / (fp32_ms * 1e6);
    f.int8_gops = flops / (int8_ms * 1e6);
    f.bandwidth_gbps = copy_bandwidth_gbps();
  });
  return f;
}

}  // namespace

RooflineSpec RooflineSpec::from_json(const nlohmann::json& j, const std::string& where) {
  const auto s = read_section<RooflineSpec>(j, where);
  if (s.fp32_gflops < 0 || s.fp16_gflops < 0 || s.int8_gops < 0 || s.bandwidth_gbps < 0)
    throw ConfigError(where + ": device figures must be positive (0 or absent: measured)");
  return s;
}

nlohmann::json RooflineSpec::to_json() const { return write_section(*this); }

RooflineSpec RooflineSpec::completed() const {
  RooflineSpec s = *this;
  if (s.fp32_gflops > 0 && s.int8_gops > 0 && s.bandwidth_gbps > 0) {
    if (s.fp16_gflops <= 0) s.fp16_gflops = s.fp32_gflops;
    return s;
  }
  const auto& m = measured_figures();
  if (s.fp32_gflops <= 0) s.fp32_gflops = m.fp32_gflops;
  if (s.int8_gops <= 0) s.int8_gops = m.int8_gops;
  if (s.bandwidth_gbps <= 0) s.bandwidth_gbps = m.bandwidth_gbps;
  if (s.fp16_gflops <= 0) s.fp16_gflops = s.fp32_gflops;
  return s;
}

BitFusionSpec BitFusionSpec::from_json(const nlohmann::json& j, const std::string& where) {
  const auto s = read_section<BitFusionSpec>(j, where);
  if (!(s.bricks > 0 && s.clock_mhz > 0 && s.bandwidth_gbps > 0))
    throw ConfigError(where + ": bricks, clock_mhz and bandwidth_gbps must be > 0");
  return s;
}

nlohmann::json BitFusionSpec::to_json() const { return write_section(*this); }

// --------------------------------------------------------------- as cost models and as targets

namespace {

/// A cost model computed from a device description: nothing is timed.
template <typename Spec, double (*Latency)(const policies::CompressedNetwork&, const Spec&,
                                           const targets::MeasureOptions&)>
class AnalyticCost : public CostModel {
 public:
  AnalyticCost(std::string name, Spec spec, targets::MeasureOptions opts)
      : name_(std::move(name)), spec_(std::move(spec)), opts_(std::move(opts)) {}
  std::string name() const override { return name_; }
  std::string source() const override { return "modelled"; }
  bool times_on_target() const override { return false; }
  std::vector<LatencyEstimate> predict(
      const std::vector<const policies::CompressedNetwork*>& candidates) override {
    std::vector<LatencyEstimate> out(candidates.size());
    for (size_t i = 0; i < candidates.size(); ++i) {
      try {
        out[i].ms = Latency(*candidates[i], spec_, opts_);
      } catch (const std::exception& e) {
        out[i].error = e.what();
      }
    }
    return out;
  }
  nlohmann::json describe() const override { return {{"device", spec_.to_json()}}; }
  std::string fingerprint() const override { return fnv1a_hex(spec_.to_json().dump()); }

 private:
  std::string name_;
  Spec spec_;
  targets::MeasureOptions opts_;
};

/// A target whose measure() is an analytic model: every result says it is modelled.
template <typename Spec, double (*Latency)(const policies::CompressedNetwork&, const Spec&,
                                           const targets::MeasureOptions&)>
class ModelledTarget : public targets::Target {
 public:
  ModelledTarget(std::string name, std::string precision_label, std::vector<std::string> precisions,
                 Spec spec)
      : name_(std::move(name)),
        label_(std::move(precision_label)),
        precisions_(std::move(precisions)),
        spec_(std::move(spec)) {}
  std::string name() const override { return name_; }
  targets::Capabilities capabilities() const override { return {precisions_, false}; }
  targets::Measurement measure(const policies::CompressedNetwork& c,
                               const targets::MeasureOptions& opts) override {
    targets::Measurement m =
        modelled(name_, label_.empty() ? "modelled:" + opts.precision : label_, opts);
    try {
      m.median_ms = m.min_ms = Latency(c, spec_, opts);
    } catch (const std::exception& e) {
      m.error = e.what();
    }
    return m;
  }

 private:
  std::string name_, label_;
  std::vector<std::string> precisions_;
  Spec spec_;
};

using RooflineCost = AnalyticCost<RooflineSpec, roofline_ms>;
using BitFusionCost = AnalyticCost<BitFusionSpec, bitfusion_ms>;
using RooflineTarget = ModelledTarget<RooflineSpec, roofline_ms>;
using BitFusionTarget = ModelledTarget<BitFusionSpec, bitfusion_ms>;

}  // namespace

std::unique_ptr<CostModel> make_roofline_cost(const nlohmann::json& device,
                                              const targets::MeasureOptions& opts) {
  return std::make_unique<RooflineCost>(
      "roofline", RooflineSpec::from_json(device, "cost.device").completed(), opts);
}

std::unique_ptr<CostModel> make_bitfusion_cost(const nlohmann::json& device,
                                               const targets::MeasureOptions& opts) {
  return std::make_unique<BitFusionCost>("bitfusion",
                                         BitFusionSpec::from_json(device, "cost.device"), opts);
}

std::vector<std::string> target_names() {
  auto names = targets::target_names();
  names.push_back("analytic-bitfusion");
  names.push_back("analytic-roofline");
  std::sort(names.begin(), names.end());
  return names;
}

std::unique_ptr<targets::Target> make_target(const std::string& name) {
  if (name == "analytic-roofline")
    return std::make_unique<RooflineTarget>(
        name, "", std::vector<std::string>{"fp32", "int8", "fp16"}, RooflineSpec().completed());
  // Any weight x activation bit-width from 1 to 16; "fp32" means "as the policy says".
  if (name == "analytic-bitfusion")
    return std::make_unique<BitFusionTarget>(name, "modelled:bit-serial",
                                             std::vector<std::string>{"fp32"}, BitFusionSpec());
  const auto names = targets::target_names();
  if (std::find(names.begin(), names.end(), name) == names.end())
    throw ConfigError("unknown target '" + name + "'; valid targets: " + join(target_names()));
  return targets::make_target(name);
}

}  // namespace tightfit::latency_models
