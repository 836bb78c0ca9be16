#pragma once
// `cpu-libtorch`: the network run by graph::Executor (LibTorch eager ops) on the CPU in fp32.
// Fake-quantized weights run as fp32 here: the size figure still counts their real bits.

#include "targets/target.h"

namespace tightfit::targets {

class LibTorchCpuTarget : public Target {
 public:
  std::string name() const override { return "cpu-libtorch"; }
  Capabilities capabilities() const override { return {{"fp32"}, false}; }
  Measurement measure(const policies::CompressedNetwork& c, const MeasureOptions& opts) override;
};

}  // namespace tightfit::targets
