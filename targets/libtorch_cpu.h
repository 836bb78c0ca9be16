#pragma once
// `cpu-libtorch`: the network run by LibTorch on the CPU. fp32: graph::Executor (LibTorch eager
// ops); fake-quantized weights run as fp32 there, while the size figure still counts their real
// bits. int8: LibTorchInt8Model (LibTorch's quantized ops on the onednn quantized engine), when
// this LibTorch has that engine.

#include "targets/target.h"

namespace tightfit::targets {

class LibTorchCpuTarget : public Target {
 public:
  std::string name() const override { return "cpu-libtorch"; }
  /// fp32, and int8 when the onednn quantized engine is available.
  Capabilities capabilities() const override;
  /// Runs `c` in opts.precision; the Measurement's precision says what ran ("fp32", "int8" or
  /// "int8+fp32" when some conv/linear layers cannot run in int8).
  Measurement measure(const policies::CompressedNetwork& c, const MeasureOptions& opts) override;
  int64_t int8_layers(const policies::CompressedNetwork& c,
                      const MeasureOptions& opts) const override;
};

}  // namespace tightfit::targets
