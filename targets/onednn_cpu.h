#pragma once
// `cpu-onednn`: the network compiled by OneDnnEngine (oneDNN primitives, blocked layouts, batch
// norm folded, activations fused) and timed on the CPU. Precision "int8" runs the layers fed by
// unsigned fake_quant nodes with 8-bit symmetric per-channel weights as u8 x s8 primitives and the
// rest in fp32; the measurement records what ran (fp32, int8 or int8+fp32).

#include "targets/target.h"

namespace tightfit::targets {

class OneDnnCpuTarget : public Target {
 public:
  std::string name() const override { return "cpu-onednn"; }
  Capabilities capabilities() const override;
  Measurement measure(const policies::CompressedNetwork& c, const MeasureOptions& opts) override;
  int64_t int8_layers(const policies::CompressedNetwork& c,
                      const MeasureOptions& opts) const override;
};

}  // namespace tightfit::targets
