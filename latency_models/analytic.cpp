#include "targets/analytic.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"

namespace tightfit::targets {

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

Measurement modelled(const std::string& target, const std::string& precision,
                     const MeasureOptions& opts) {
  Measurement m;
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

Measurement RooflineTarget::measure(const policies::CompressedNetwork& c,
                                    const MeasureOptions& opts) {
  Measurement m = modelled(name(), "modelled:" + opts.precision, opts);
  try {
    double seconds = 0;
    for (const auto& w : layer_work(c)) {
      // The layer runs at the precision its weights allow, capped by what was asked for.
      double peak = spec_.fp32_gflops;
      if (opts.precision == "int8" && w.weight_bits <= 8)
        peak = spec_.int8_gops;
      else if (opts.precision != "fp32" && w.weight_bits <= 16)
        peak = spec_.fp16_gflops;
      const double act_bytes_per = std::min(w.act_bits, 32) / 8.0;
      const double bytes = w.weight_bytes + (w.in_elements + w.out_elements) * act_bytes_per *
                                                static_cast<double>(opts.batch);
      const double compute = 2.0 * w.macs * static_cast<double>(opts.batch) / (peak * 1e9);
      const double memory = bytes / (spec_.bandwidth_gbps * 1e9);
      seconds += std::max(compute, memory);
    }
    m.median_ms = m.min_ms = seconds * 1e3;
  } catch (const std::exception& e) {
    m.error = e.what();
  }
  return m;
}

Measurement BitFusionTarget::measure(const policies::CompressedNetwork& c,
                                     const MeasureOptions& opts) {
  Measurement m = modelled(name(), "modelled:bit-serial", opts);
  try {
    constexpr int kBrickBits = 2;
    constexpr int kMaxBits = 16;  // wider operands are not supported by the fusion array
    double seconds = 0;
    for (const auto& w : layer_work(c)) {
      const int wb = std::min(w.weight_bits, kMaxBits);
      const int ab = std::min(w.act_bits, kMaxBits);
      const double bricks_per_mac = std::ceil(static_cast<double>(wb) / kBrickBits) *
                                    std::ceil(static_cast<double>(ab) / kBrickBits);
      const double compute = w.macs * static_cast<double>(opts.batch) * bricks_per_mac /
                             (spec_.bricks * spec_.clock_mhz * 1e6);
      const double bytes = w.weight_bytes + (w.in_elements + w.out_elements) * ab / 8.0 *
                                                static_cast<double>(opts.batch);
      const double memory = bytes / (spec_.bandwidth_gbps * 1e9);
      seconds += std::max(compute, memory);
    }
    m.median_ms = m.min_ms = seconds * 1e3;
  } catch (const std::exception& e) {
    m.error = e.what();
  }
  return m;
}

}  // namespace tightfit::targets
