#pragma once
// OneDnnEngine: a graph::Network compiled once into a list of oneDNN primitives for the CPU.
// Compilation folds each batch_norm that follows a conv into the conv's weights and bias, fuses a
// following relu / relu6 / hardswish into the producing conv, linear or add as a post-op, lets
// convolutions pick their own (blocked) layouts and inserts reorders only where a consumer wants
// a layout its producer did not give. run() then only copies the input in, executes the list and
// reorders the output to plain row-major floats. Plain floats only: no LibTorch types here.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph/network.h"

namespace tightfit::targets {

class OneDnnEngine {
 public:
  /// Compiles `net` for `batch` images. Precisions: "fp32"; "int8" runs each conv/linear fed by
  /// an unsigned fake_quant (zero point 0) with <= 8-bit symmetric per-channel weights as a
  /// u8 x s8 primitive (exact: without VNNI only when activations are <= 127 or weights within
  /// [-64, 63]) and every other layer in fp32; "bf16" runs each conv/linear whose weights are
  /// bfloat16 values with bf16 inputs and weights where the CPU has AVX512-BF16 (cpu_has_bf16),
  /// the rest (and everything elsewhere) in fp32. Throws InputError for an op,
  /// attribute or precision the engine does not support and for oneDNN errors (naming the node).
  OneDnnEngine(const graph::Network& net, int64_t batch, const std::string& precision = "fp32");
  ~OneDnnEngine();
  OneDnnEngine(OneDnnEngine&&) noexcept;
  OneDnnEngine& operator=(OneDnnEngine&&) noexcept;

  /// Runs one batch. `input` is NCHW float32 ({batch} + net.input_shape(), row-major); returns the
  /// output node's values row-major with shape output_shape() ({batch, classes} for a classifier).
  std::vector<float> run(const float* input);

  /// Runs only the steps that compute `node` itself (its primitive, not the reorders around it)
  /// on whatever its buffers hold, after a run(): the time a layer takes inside a network, for
  /// latency tables. Throws InputError when no step computes `node`.
  void run_node(const std::string& node);

  /// Where the time of a run goes: each step's median time over `runs` runs of `input`, in
  /// execution order. Kinds: "primitive" (a layer), "reorder" (a layout or type conversion
  /// between layers), "loop" (a quantization loop).
  struct StepTime {
    std::string node, kind;
    double median_ms = 0;
  };
  std::vector<StepTime> step_times(const float* input, int runs);

  /// Output shape including the batch dimension.
  const graph::Shape& output_shape() const;
  /// Input shape including the batch dimension.
  const graph::Shape& input_shape() const;
  /// Precision the network actually runs in: "fp32", "int8" (every conv/linear in int8),
  /// "int8+fp32" (some of them), "bf16" or "bf16+fp32".
  const std::string& precision() const;
  /// Conv/linear layers compiled as int8 and as fp32 primitives.
  int64_t int8_layers() const;
  int64_t bf16_layers() const;
  int64_t fp32_layers() const;
  /// Number of primitives and custom steps executed per run (reorders included).
  int num_steps() const;

  /// True when this CPU multiplies full-range u8 activations by 8-bit weights exactly (VNNI,
  /// decided at run time: cpu_has_vnni() in targets/int8.h, which cpu-libtorch uses too);
  /// without it int8 needs activation codes <= 127 or weight codes within [-64, 63].
  static bool exact_full_range_int8();
  /// Precisions the engine supports on this CPU.
  static std::vector<std::string> supported_precisions();

  struct Impl;  ///< compiled state (defined in the .cpp; public so its compiler can fill it)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tightfit::targets
