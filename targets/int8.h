#pragma once
// The int8 lowering both CPU backends share: the oneDNN engine (cpu-onednn,
// targets/onednn_engine.cpp) and LibTorch's quantized ops (cpu-libtorch,
// targets/libtorch_int8.cpp).
//   - the grid: weights as integer codes on a symmetric per-output-channel grid (policies/ leaves
//     conv/linear weights as float32 values code * scale_o), activations by a fake_quant's
//     rounding and clamping, in the same float arithmetic as LibTorch's fake quantization;
//   - the plan: which conv/linear layers run as u8 x s8 layers (the eligibility rule below);
//   - VNNI, decided at run time from the CPU oneDNN runs on.
// What stays in each backend, on purpose: where values are quantized and dequantized (oneDNN
// primitives can write f32, so the engine writes u8 codes only into a value read by int8 layers
// alone; LibTorch 1.13's quantized conv/linear return quint8 only, so every int8 layer there needs
// an output grid, and the classifier stays fp32), and the loops that run the grid's arithmetic
// (each on its backend's buffers and threads: OpenMP over dnnl::memory, at::parallel_for over
// tensors; their timings are what the targets measure).

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "graph/network.h"

namespace tightfit::targets {

/// Largest u8 (quint8) code.
constexpr int64_t kU8CodeMax = 255;
/// Largest u8 activation code whose products with any s8 weight accumulate exactly without VNNI:
/// pairs of u8 x s8 products are summed in int16 (`vpmaddubsw`), 2 * 127 * 128 < 2^15.
constexpr int64_t kU8CodeMaxWithoutVnni = 127;

// --- Weights ------------------------------------------------------------------------------------

/// A weight tensor as integer codes with one scale per output channel (dim 0).
struct Int8Weights {
  std::vector<int8_t> codes;   ///< integer weights, the graph's weight layout
  std::vector<double> scales;  ///< per output channel: weight = code * scale (0: all codes 0)
};

/// Integer codes of `w` on a symmetric per-output-channel grid of 8 bits or fewer (scale =
/// max|w_o| / (2^(b-1) - 1)); false when some channel lies on no such grid.
bool weight_codes(const graph::Tensor& w, Int8Weights& out);

/// True when every code lies in [-64, 63]: u8 x s8 products then accumulate exactly in int16
/// pairs on CPUs without VNNI, whatever the activations.
bool within_7_bits(const Int8Weights& w);

/// `w` times the per-output-channel multipliers `mult` (e.g. a folded BN) with every scale
/// positive: a negative product moves its sign into the (symmetric) codes, and a zero one zeroes
/// the codes with scale 1 (the layer's output is then its bias).
Int8Weights with_multipliers(const Int8Weights& w, const std::vector<double>& mult);

// --- Activations --------------------------------------------------------------------------------

/// A fake_quant's arithmetic, as LibTorch's fake_quantize_per_tensor_affine does it on the CPU:
/// level = clamp(nearbyint(x * (1.0f / scale)), q_min - zp, q_max - zp) in float, value =
/// level * scale; the code is level + zp. Header-only so that the backends' loops vectorize it.
struct FakeQuantGrid {
  float scale = 1.0f, inv_scale = 1.0f;
  float lo = 0.0f, hi = 0.0f;  ///< level range, relative to the zero point

  explicit FakeQuantGrid(const graph::Attrs& a)
      : scale(static_cast<float>(a.q_scale)),
        inv_scale(1.0f / scale),
        lo(static_cast<float>(a.q_min - a.q_zero_point)),
        hi(static_cast<float>(a.q_max - a.q_zero_point)) {}

  /// Rounded and clamped level of `x` (round(clamp(x / scale)) equals the clamped rounded value:
  /// the bounds are integers). Rounds half to even by adding and subtracting 1.5 * 2^23 (exact
  /// for |v| < 2^22, which the clamp ensures): unlike std::nearbyint it vectorizes without
  /// SSE4.1, and the clamp between multiply and add keeps compilers from fusing them.
  float level(float x) const {
    constexpr float kRoundingMagic = 12582912.0f;
    const float v = std::min(std::max(x * inv_scale, lo), hi);
    return (v + kRoundingMagic) - kRoundingMagic;
  }
};

/// True when `n` is a fake_quant whose codes are u8 with zero point 0 (positive scale, levels
/// within [0, 255]): the input an int8 layer reads as its codes.
bool is_u8_fake_quant(const graph::Node& n);

// --- Plan ---------------------------------------------------------------------------------------

/// How a conv/linear runs in int8: the fake_quant feeding it and its weights' integer codes.
struct Int8Layer : Int8Weights {
  int fq = -1;  ///< fake_quant node producing the layer's input
};

/// Which conv/linear nodes of `net` can run as u8 x s8 layers, by node id (nothing for other
/// nodes and for layers that must run in fp32): the input is a u8 fake_quant (is_u8_fake_quant),
/// the weights lie on a symmetric per-channel grid of <= 8 bits (weight_codes), and the products
/// are exact: always with `vnni`, otherwise only with activation codes <= 127 or weight codes
/// within [-64, 63]. A backend may run fewer of them in int8, never more.
std::vector<std::optional<Int8Layer>> plan_int8_layers(const graph::Network& net, bool vnni);

/// Which conv/linear nodes of `net` hold bf16 weights (every weight value exactly a bfloat16:
/// what a policy's 16-bit weights with quantization.float16 "bf16" are), by node id. With
/// `has_bf16` (cpu_has_bf16) a backend running bf16 executes them with bf16 inputs and weights
/// (f32 accumulation and output); without it, none: they run in fp32.
std::vector<bool> plan_bf16_layers(const graph::Network& net, bool has_bf16);

// --- CPU ----------------------------------------------------------------------------------------

/// True when this CPU multiplies full-range u8 activations by s8 weights exactly (AVX512-VNNI or
/// AVX-VNNI), as oneDNN sees it at run time (its effective ISA, which ONEDNN_MAX_CPU_ISA lowers).
/// Without it int8 needs activation codes <= 127 or weight codes within [-64, 63].
bool cpu_has_vnni();

/// True when this CPU has bf16 dot products (AVX512-BF16, or AMX), as oneDNN sees it at run time.
bool cpu_has_bf16();

}  // namespace tightfit::targets
