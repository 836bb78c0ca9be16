#pragma once
// Analytic latency models: latency computed from a device description instead of timed, so that
// the search has a hardware signal for what no CPU here runs natively (sub-8-bit arithmetic).
//
//   roofline   per conv/linear layer, max(compute, memory): 2 x MACs over the peak of the
//              precision the layer runs at (weights <= 8 bits: int8 peak; 16: fp16; else fp32),
//              bytes moved (weights at their stored size plus input and output activations at
//              their bits) over the memory bandwidth.
//   bitfusion  a bit-serial accelerator in the spirit of BitFusion (Sharma et al. 2018), the
//              hardware HAQ searched against: an array of 2-bit "BitBricks" fused per layer, so
//              a w-bit x a-bit multiply-accumulate occupies ceil(w/2) x ceil(a/2) bricks;
//              compute time = MACs x that / (bricks x clock), memory as in the roofline,
//              latency = max per layer, summed.
// Layers other than conv/linear are left out of both models (they are a small share of the time
// on these networks and neither device description covers them).
//
// The roofline's device figures come from its config or, for any figure not given, are measured
// on this machine once per process: the fp32 peak of one core (a compute-bound convolution on
// cpu-onednn), the int8 peak as that layer's int8 speed-up over fp32 (about 1x on AVX2-only
// CPUs, several times on CPUs with VNNI), and the copy bandwidth of one core.
//
// Each model serves two ways: as a cost model (`"cost": {"latency": "roofline"}`) and as a
// target whose measure() is modelled (`analytic-roofline`, `analytic-bitfusion`), which
// make_target() here builds beside the timed targets.

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "latency_models/cost_model.h"
#include "targets/target.h"

namespace tightfit::latency_models {

struct RooflineSpec {
  std::string device = "this CPU, 1 core (measured)";
  double fp32_gflops = 0;     ///< peak per core; 0: measured
  double fp16_gflops = 0;     ///< 0: the fp32 peak (no native fp16 arithmetic on these CPUs)
  double int8_gops = 0;       ///< 0: measured (the int8 speed-up of a convolution x fp32 peak)
  double bandwidth_gbps = 0;  ///< sustained memory bandwidth of one core, GB/s; 0: measured

  template <typename Fields>
  void fields(Fields& f) {
    f("device", device);
    f("fp32_gflops", fp32_gflops);
    f("fp16_gflops", fp16_gflops);
    f("int8_gops", int8_gops);
    f("bandwidth_gbps", bandwidth_gbps);
  }
  static RooflineSpec from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
  /// Figures left at 0 measured on this machine (once per process).
  RooflineSpec completed() const;
};

struct BitFusionSpec {
  std::string device = "BitFusion-like accelerator (modelled)";
  double bricks = 4096;          ///< 2-bit x 2-bit multiply units
  double clock_mhz = 500;        ///< array clock
  double bandwidth_gbps = 25.6;  ///< off-chip bandwidth, GB/s

  template <typename Fields>
  void fields(Fields& f) {
    f("device", device);
    f("bricks", bricks);
    f("clock_mhz", clock_mhz);
    f("bandwidth_gbps", bandwidth_gbps);
  }
  static BitFusionSpec from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
};

/// Modelled latency in ms per batch of `opts.batch` images, `opts.precision` capping what the
/// layers may run at (roofline). InputError when the network's shapes cannot be inferred.
double roofline_ms(const policies::CompressedNetwork& c, const RooflineSpec& spec,
                   const targets::MeasureOptions& opts);
double bitfusion_ms(const policies::CompressedNetwork& c, const BitFusionSpec& spec,
                    const targets::MeasureOptions& opts);

/// The cost models "roofline" and "bitfusion" (from the cost section's "device" object).
std::unique_ptr<CostModel> make_roofline_cost(const nlohmann::json& device,
                                              const targets::MeasureOptions& opts);
std::unique_ptr<CostModel> make_bitfusion_cost(const nlohmann::json& device,
                                               const targets::MeasureOptions& opts);

/// Any target by name: the timed ones of targets/ and the modelled analytic-roofline and
/// analytic-bitfusion; ConfigError listing every name on a miss.
std::unique_ptr<targets::Target> make_target(const std::string& name);
std::vector<std::string> target_names();

}  // namespace tightfit::latency_models
