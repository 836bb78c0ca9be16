#pragma once
// LibTorchInt8Model: a graph::Network compiled once into LibTorch's quantized CPU ops, run through
// the onednn quantized engine — the int8 deployment path of PyTorch itself, next to the oneDNN
// engine that calls oneDNN directly (targets/onednn_engine.h).

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>

#include "graph/network.h"

namespace tightfit::targets {

class LibTorchInt8Model {
 public:
  /// Compiles `net`: each conv/linear fed by an unsigned fake_quant (zero point 0) with <= 8-bit
  /// symmetric per-channel weights becomes quantized::conv2d / quantized::linear (BN folded,
  /// a following ReLU fused; exact on CPUs without VNNI only when activations are <= 127 or
  /// weights within [-64, 63], otherwise the layer runs in fp32), every other node runs in fp32.
  /// An int8 layer's output lands on the grid of the fake_quant it reaches through ReLU, max
  /// pooling, flatten or dropout; without one, on a grid spanning its values on `calibration`
  /// ({N} + net.input_shape(), float; undefined: a seeded random normal batch). A layer whose
  /// value is the network output runs in fp32 (no quantized op here returns floats). Throws
  /// InputError for unsupported ops and when the onednn quantized engine is missing.
  explicit LibTorchInt8Model(const graph::Network& net, const at::Tensor& calibration = {});
  ~LibTorchInt8Model();
  LibTorchInt8Model(LibTorchInt8Model&&) noexcept;
  LibTorchInt8Model& operator=(LibTorchInt8Model&&) noexcept;

  /// Runs a float batch ({N} + net.input_shape()); returns the output node's values as float.
  at::Tensor forward(const at::Tensor& x);

  /// Precision the network actually runs in: "fp32", "int8" (every conv/linear in int8) or
  /// "int8+fp32" (some of them).
  const std::string& precision() const;
  /// Conv/linear layers compiled as quantized ops and as fp32 ops.
  int64_t int8_layers() const;
  int64_t fp32_layers() const;

  /// True when this LibTorch has the onednn quantized engine.
  static bool supported();

  /// Writes `net` (the network this model was compiled from) as TorchScript, as
  /// models::export_torchscript does, except that every layer this model runs in int8 is the
  /// same quantized op with the same packed weights and grids (quantize_per_tensor of its input
  /// fake_quant's values, quantized::conv2d[_relu] / linear[_relu], dequantize), its folded BN
  /// and fused ReLU included. Loaded with torch.backends.quantized.engine = "onednn" (Python) or
  /// the ONEDNN quantized engine (C++), it computes what forward() computes.
  void export_torchscript(const graph::Network& net, const std::string& path) const;

  struct Impl;  ///< compiled state (defined in the .cpp; public so its compiler can fill it)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tightfit::targets
