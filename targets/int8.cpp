#include "targets/int8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>

#include "targets/lowering.h"

namespace tightfit::targets {

bool weight_codes(const graph::Tensor& w, Int8Weights& out) {
  const int64_t out_ch = w.shape.at(0);
  const int64_t per_out = w.numel() / out_ch;
  out.codes.assign(static_cast<size_t>(w.numel()), 0);
  out.scales.assign(static_cast<size_t>(out_ch), 0.0);
  for (int64_t o = 0; o < out_ch; ++o) {
    const float* row = w.data.data() + o * per_out;
    double top = 0.0;
    for (int64_t k = 0; k < per_out; ++k) top = std::max(top, std::fabs(double{row[k]}));
    if (top == 0.0) continue;  // all codes 0
    bool found = false;
    for (int bits = 8; bits >= 2 && !found; --bits) {
      const double scale = top / static_cast<double>((1 << (bits - 1)) - 1);
      found = true;
      for (int64_t k = 0; k < per_out && found; ++k) {
        const double r = row[k] / scale;
        // Scales are float32 and the maximum itself is rounded: codes are integers within 1e-5.
        found = std::fabs(r - std::nearbyint(r)) <= 1e-2;
      }
      if (!found) continue;
      out.scales[o] = scale;
      for (int64_t k = 0; k < per_out; ++k)
        out.codes[o * per_out + k] = static_cast<int8_t>(std::nearbyint(row[k] / scale));
    }
    if (!found) return false;
  }
  return true;
}

bool within_7_bits(const Int8Weights& w) {
  return std::all_of(w.codes.begin(), w.codes.end(), [](int8_t c) { return c >= -64 && c <= 63; });
}

Int8Weights with_multipliers(const Int8Weights& w, const std::vector<double>& mult) {
  Int8Weights out = w;
  const size_t per_out = w.codes.size() / w.scales.size();
  for (size_t o = 0; o < w.scales.size(); ++o) {
    double scale = w.scales[o] * mult[o];
    int sign = 1;
    if (scale < 0) {
      scale = -scale;
      sign = -1;
    }
    if (scale == 0) {
      scale = 1.0;
      sign = 0;
    }
    out.scales[o] = scale;
    for (size_t k = 0; k < per_out; ++k)
      out.codes[o * per_out + k] = static_cast<int8_t>(sign * w.codes[o * per_out + k]);
  }
  return out;
}

bool is_u8_fake_quant(const graph::Node& n) {
  const auto& a = n.attrs;
  return n.op == graph::OpKind::kFakeQuant && a.q_zero_point == 0 && a.q_min >= 0 &&
         a.q_max <= kU8CodeMax && a.q_scale > 0;
}

namespace {

std::optional<Int8Layer> plan_int8_layer(const graph::Network& net, int id, bool vnni) {
  const graph::Node& n = net.node(id);
  Int8Layer layer;
  layer.fq = n.inputs.at(0);
  const graph::Node& fq = net.node(layer.fq);
  if (!is_u8_fake_quant(fq)) return std::nullopt;
  if (!weight_codes(param(n, "weight"), layer)) return std::nullopt;
  if (!(vnni || fq.attrs.q_max <= kU8CodeMaxWithoutVnni || within_7_bits(layer)))
    return std::nullopt;
  return layer;
}

}  // namespace

std::vector<std::optional<Int8Layer>> plan_int8_layers(const graph::Network& net, bool vnni) {
  std::vector<std::optional<Int8Layer>> plan(static_cast<size_t>(net.size()));
  for (int i = 0; i < net.size(); ++i) {
    const graph::OpKind op = net.node(i).op;
    if (op == graph::OpKind::kConv2d || op == graph::OpKind::kLinear)
      plan[i] = plan_int8_layer(net, i, vnni);
  }
  return plan;
}

bool cpu_has_vnni() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_vnni:
    case dnnl::cpu_isa::avx512_core_bf16:
    case dnnl::cpu_isa::avx512_core_amx:
    case dnnl::cpu_isa::avx2_vnni:
      return true;
    default:
      return false;
  }
}

bool cpu_has_bf16() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_bf16:
    case dnnl::cpu_isa::avx512_core_amx:
      return true;
    default:
      return false;
  }
}

std::vector<bool> plan_bf16_layers(const graph::Network& net, bool has_bf16) {
  std::vector<bool> out(static_cast<size_t>(net.size()), false);
  if (!has_bf16) return out;
  for (int i = 0; i < net.size(); ++i) {
    const graph::Node& n = net.node(i);
    if (!graph::has_weights(n.op)) continue;
    const auto& w = n.params.at("weight").data;
    // A bfloat16 is the upper half of a float32: exact when the lower 16 bits are zero.
    out[static_cast<size_t>(i)] = std::all_of(w.begin(), w.end(), [](float v) {
      uint32_t bits = 0;
      std::memcpy(&bits, &v, sizeof bits);
      return (bits & 0xFFFFu) == 0;
    });
  }
  return out;
}

}  // namespace tightfit::targets
