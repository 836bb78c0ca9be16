#pragma once
// Analytic targets: latency computed from a device description instead of timed, so that the
// search has a hardware signal for what no CPU here runs natively (sub-8-bit arithmetic). Every
// result says it is modelled (Measurement::modelled).
//
//   analytic-roofline   per conv/linear layer, max(compute, memory): 2 x MACs over the peak of
//                       the precision the layer runs at (weights <= 8 bits: int8 peak; 16: fp16;
//                       else fp32), bytes moved (weights at their stored size plus input and
//                       output activations at their bits) over the memory bandwidth.
//   analytic-bitfusion  a bit-serial accelerator in the spirit of BitFusion (Sharma et al. 2018),
//                       the hardware HAQ searched against: an array of 2-bit "BitBricks" fused per
//                       layer, so a w-bit x a-bit multiply-accumulate occupies
//                       ceil(w/2) x ceil(a/2) bricks; compute time = MACs x that / (bricks x
//                       clock), memory as in the roofline, latency = max per layer, summed.
// Layers other than conv/linear are left out of both models (they are a small share of the
// time on these networks and neither device description covers them).

#include <map>
#include <string>

#include "targets/target.h"

namespace tightfit::targets {

struct RooflineSpec {
  std::string device = "this CPU, 1 core (AVX2 FMA, no VNNI)";
  double fp32_gflops = 100.0;    ///< measured FMA peak per core (shared/notes/cpu-facts.md)
  double fp16_gflops = 100.0;    ///< no native fp16 arithmetic: runs at fp32 speed
  double int8_gops = 200.0;      ///< oneDNN int8 convolutions measured ~2x fp32 on this CPU
  double bandwidth_gbps = 20.0;  ///< sustained DRAM bandwidth of one core, GB/s
};

struct BitFusionSpec {
  std::string device = "BitFusion-like accelerator (modelled)";
  double bricks = 4096;          ///< 2-bit x 2-bit multiply units
  double clock_mhz = 500;        ///< array clock
  double bandwidth_gbps = 25.6;  ///< off-chip bandwidth, GB/s
};

class RooflineTarget : public Target {
 public:
  explicit RooflineTarget(RooflineSpec spec = {}) : spec_(std::move(spec)) {}
  std::string name() const override { return "analytic-roofline"; }
  Capabilities capabilities() const override { return {{"fp32", "int8", "fp16"}, false}; }
  Measurement measure(const policies::CompressedNetwork& c, const MeasureOptions& opts) override;

 private:
  RooflineSpec spec_;
};

class BitFusionTarget : public Target {
 public:
  explicit BitFusionTarget(BitFusionSpec spec = {}) : spec_(std::move(spec)) {}
  std::string name() const override { return "analytic-bitfusion"; }
  /// Any weight x activation bit-width from 1 to 16; "fp32" means "as the policy says".
  Capabilities capabilities() const override { return {{"fp32"}, false}; }
  Measurement measure(const policies::CompressedNetwork& c, const MeasureOptions& opts) override;

 private:
  BitFusionSpec spec_;
};

}  // namespace tightfit::targets
