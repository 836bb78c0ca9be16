#pragma once
// `cpu-onednn`: the network compiled by OneDnnEngine (oneDNN primitives, blocked layouts, batch
// norm folded, activations fused) and timed on the CPU. Fake-quantized weights run as fp32.

#include "targets/target.h"

namespace tightfit::targets {

class OneDnnCpuTarget : public Target {
 public:
  std::string name() const override { return "cpu-onednn"; }
  Capabilities capabilities() const override;
  Measurement measure(const policies::CompressedNetwork& c, const MeasureOptions& opts) override;
};

}  // namespace tightfit::targets
