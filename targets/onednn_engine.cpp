// How a network becomes oneDNN primitives (one pass over the nodes in topological order):
//   - every node's output is a dnnl::memory whose desc is whatever its producer chose; aliases
//     (dropout, flatten of a vector) share their input's memory;
//   - conv2d: batch_norm folded into weights/bias when the conv is its only producer and the BN
//     its only consumer, then a relu/relu6/hardswish that is the only consumer becomes a post-op;
//     src/weights/dst use format_tag::any so oneDNN picks its fastest (blocked) layouts;
//   - a consumer that wants another layout gets one reorder per (value, layout), shared by all
//     consumers that want it; weights are reordered once, here;
//   - fake_quant is a small loop over the raw buffer: it is per-tensor and elementwise, so the
//     layout does not matter (padding lanes of blocked layouts are never read as values);
//   - precision "int8": a conv/linear whose input is an unsigned fake_quant (zero point 0,
//     q_min >= 0) and whose weights lie on a symmetric per-output-channel grid of at most 8 bits
//     runs as a u8 x s8 primitive with f32 output: the fake_quant becomes a loop writing u8 codes
//     in the layout the primitive picked (no fp32 fake_quant step when only int8 layers read it),
//     the weights become their integer codes and act_scale * weight_scale[o] * bn_scale[o] is the
//     per-channel output scale (oneDNN 2.x scales the accumulator plus bias, so the bias is
//     divided by it). Without VNNI a u8 x s8 product pair saturates in int16 unless activations
//     are <= 127 or weights are in [-64, 63]; a layer meeting neither runs in fp32 instead.
// run() executes the list in order; the output is reordered to plain row-major at the end.

#include "targets/onednn_engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <unordered_map>
#include <utility>

#include "graph/errors.h"

namespace tightfit::targets {

namespace {

using dnnl::memory;
using graph::Node;
using graph::OpKind;
using Tag = memory::format_tag;
using Dt = memory::data_type;

memory::dims with_batch(int64_t batch, const graph::Shape& s) {
  memory::dims d{batch};
  d.insert(d.end(), s.begin(), s.end());
  return d;
}

/// Row-major tag for a tensor of `ndims` dimensions (batch included).
Tag plain_tag(size_t ndims) {
  switch (ndims) {
    case 1:
      return Tag::a;
    case 2:
      return Tag::ab;
    case 3:
      return Tag::abc;
    case 4:
      return Tag::abcd;
    case 5:
      return Tag::abcde;
    default:
      throw InputError("oneDNN engine: tensors of " + std::to_string(ndims) +
                       " dimensions are not supported");
  }
}

memory::desc plain_desc(const memory::dims& dims) {
  return memory::desc(dims, Dt::f32, plain_tag(dims.size()));
}

const graph::Tensor& param(const Node& n, const std::string& key) {
  auto it = n.params.find(key);
  if (it == n.params.end())
    throw InputError("node '" + n.name + "' (" + graph::op_name(n.op) + ") has no parameter '" +
                     key + "'");
  return it->second;
}

/// `md` with its data type replaced (same dims and layout).
memory::desc with_type(const memory::desc& md, Dt type) {
  memory::desc out = md;
  out.data.data_type = static_cast<dnnl_data_type_t>(type);
  return out;
}

/// True when u8 x s8 products accumulate without int16 saturation (VNNI instructions).
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

/// How a conv/linear runs in int8: the fake_quant feeding it and its weights' integer codes.
struct Int8Layer {
  int fq = -1;                 ///< fake_quant node producing the layer's input
  std::vector<int8_t> codes;   ///< integer weights, the graph's weight layout
  std::vector<double> scales;  ///< per output channel: weight = code * scale
};

/// Integer codes of `w` on a symmetric per-output-channel grid of 8 bits or fewer (scale =
/// max|w_o| / (2^(b-1) - 1)); false when some channel lies on no such grid.
bool weight_codes(const graph::Tensor& w, Int8Layer& layer) {
  const int64_t out_ch = w.shape.at(0);
  const int64_t per_out = w.numel() / out_ch;
  layer.codes.assign(static_cast<size_t>(w.numel()), 0);
  layer.scales.assign(static_cast<size_t>(out_ch), 0.0);
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
      layer.scales[o] = scale;
      for (int64_t k = 0; k < per_out; ++k)
        layer.codes[o * per_out + k] = static_cast<int8_t>(std::nearbyint(row[k] / scale));
    }
    if (!found) return false;
  }
  return true;
}

/// One entry of the execution list: a primitive with its arguments or a custom loop.
struct Step {
  std::string node;  ///< for error messages
  dnnl::primitive primitive;
  std::unordered_map<int, memory> args;
  std::function<void()> custom;  ///< set instead of `primitive` for hand-written steps
};

}  // namespace

struct OneDnnEngine::Impl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  std::vector<Step> steps;
  memory input_mem;   ///< plain NCHW, written by run()
  memory output_mem;  ///< plain row-major, read by run()
  graph::Shape in_shape, out_shape;
  std::string precision;  ///< what ran: fp32, int8 or int8+fp32
  int64_t int8_layers = 0, fp32_layers = 0;
};

namespace {

class Compiler {
 public:
  Compiler(const graph::Network& net, int64_t batch, OneDnnEngine::Impl& impl)
      : net_(net), batch_(batch), impl_(impl) {}

  void compile() {
    shapes_ = graph::infer_shapes(net_);
    const int n = net_.size();
    users_.assign(n, {});
    values_.assign(n, memory());
    root_.resize(n);
    fused_.assign(n, false);
    converted_.assign(n, {});
    for (int i = 0; i < n; ++i) {
      root_[i] = i;
      for (int in : net_.node(i).inputs) users_[in].push_back(i);
    }
    int8_.assign(n, std::nullopt);
    if (impl_.precision == "int8") {
      const bool vnni = cpu_has_vnni();
      for (int i = 0; i < n; ++i) {
        const OpKind op = net_.node(i).op;
        if (op == OpKind::kConv2d || op == OpKind::kLinear) int8_[i] = plan_int8(i, vnni);
      }
    }
    for (int i = 0; i < n; ++i) {
      if (fused_[i]) continue;
      const Node& node = net_.node(i);
      try {
        compile_node(i);
      } catch (const dnnl::error& e) {
        throw InputError(std::string("oneDNN: ") + e.what() + " at node '" + node.name + "'");
      }
    }
    const int out = net_.output();
    TIGHTFIT_CHECK(!fused_[out], "the output node was fused into its producer");
    impl_.out_shape = with_batch(batch_, shapes_[out]);
    if (impl_.int8_layers == 0)
      impl_.precision = "fp32";
    else
      impl_.precision = impl_.fp32_layers == 0 ? "int8" : "int8+fp32";
    try {
      impl_.output_mem = as(out, plain_desc(impl_.out_shape), net_.node(out).name);
    } catch (const dnnl::error& e) {
      throw InputError(std::string("oneDNN: ") + e.what() + " at the output reorder");
    }
  }

 private:
  const graph::Network& net_;
  int64_t batch_;
  OneDnnEngine::Impl& impl_;
  std::vector<graph::Shape> shapes_;
  std::vector<std::vector<int>> users_;
  std::vector<memory> values_;  ///< indexed by root id
  std::vector<int> root_;       ///< node -> node whose memory holds its value
  std::vector<bool> fused_;     ///< compiled as part of an earlier node
  /// root id -> the same value reordered into other layouts
  std::vector<std::vector<std::pair<memory::desc, memory>>> converted_;
  std::vector<std::optional<Int8Layer>> int8_;  ///< conv/linear nodes that run in int8

  /// The int8 plan of conv/linear `id`, or nothing when it must run in fp32.
  std::optional<Int8Layer> plan_int8(int id, bool vnni) const {
    const Node& n = net_.node(id);
    Int8Layer layer;
    layer.fq = n.inputs.at(0);
    const auto& a = net_.node(layer.fq).attrs;
    if (net_.node(layer.fq).op != OpKind::kFakeQuant || a.q_zero_point != 0 || a.q_min < 0 ||
        a.q_max > 255 || !(a.q_scale > 0))
      return std::nullopt;
    if (!weight_codes(param(n, "weight"), layer)) return std::nullopt;
    const bool seven_bit = std::all_of(layer.codes.begin(), layer.codes.end(),
                                       [](int8_t c) { return c >= -64 && c <= 63; });
    if (!(vnni || a.q_max <= 127 || seven_bit)) return std::nullopt;
    return layer;
  }

  /// True when every consumer of fake_quant `id` runs in int8 (and reads the u8 codes instead).
  bool feeds_only_int8(int id) const {
    if (id == net_.output() || users_[id].empty()) return false;
    return std::all_of(users_[id].begin(), users_[id].end(),
                       [&](int u) { return int8_[u].has_value(); });
  }

  /// u8 codes of fake_quant `fq`'s input, in layout `u8_md`: the fake_quant's own rounding and
  /// clamping (zero point 0), written as integers for an int8 consumer.
  memory quantized_input(int fq, const memory::desc& u8_md, const std::string& consumer) {
    const Node& f = net_.node(fq);
    const memory src = as(f.inputs.at(0), with_type(u8_md, Dt::f32), consumer);
    memory dst(u8_md, eng());
    const float scale = static_cast<float>(f.attrs.q_scale);
    const float inv_scale = 1.0f / scale;
    const float q_min = static_cast<float>(f.attrs.q_min),
                q_max = static_cast<float>(f.attrs.q_max);
    const size_t count = u8_md.get_size();
    Step s;
    s.node = f.name;
    s.custom = [=]() {
      const float* x = static_cast<const float*>(src.get_data_handle());
      uint8_t* y = static_cast<uint8_t*>(dst.get_data_handle());
      for (size_t i = 0; i < count; ++i)
        y[i] = static_cast<uint8_t>(
            std::min(std::max(std::nearbyint(x[i] * inv_scale), q_min), q_max));
    };
    impl_.steps.push_back(std::move(s));
    return dst;
  }

  /// Integer weights, output scales (mask) and bias for an int8 layer whose fp32 form would be
  /// (codes * scales) * mult[o] + bias[o] on input codes * act_scale.
  void int8_params(const Int8Layer& layer, const std::vector<double>& mult,
                   const std::vector<float>& bias, std::vector<int8_t>& codes,
                   std::vector<float>& out_scales, std::vector<float>& scaled_bias,
                   dnnl::primitive_attr& attr) const {
    const size_t out_ch = layer.scales.size();
    const size_t per_out = layer.codes.size() / out_ch;
    const double act_scale = static_cast<float>(net_.node(layer.fq).attrs.q_scale);
    codes = layer.codes;
    out_scales.assign(out_ch, 1.0f);
    scaled_bias.assign(out_ch, 0.0f);
    for (size_t o = 0; o < out_ch; ++o) {
      double s = act_scale * layer.scales[o] * mult[o];
      int sign = 1;
      if (s < 0) {  // keep scales positive: the sign goes into the (symmetric) codes
        s = -s;
        sign = -1;
      }
      if (s == 0) {  // the layer's output is its bias
        s = 1.0;
        sign = 0;
      }
      for (size_t k = 0; k < per_out; ++k)
        codes[o * per_out + k] = static_cast<int8_t>(sign * codes[o * per_out + k]);
      out_scales[o] = static_cast<float>(s);
      // oneDNN 2.x applies the output scale to accumulator + bias.
      scaled_bias[o] = static_cast<float>(bias[o] / static_cast<double>(out_scales[o]));
    }
    attr.set_output_scales(out_ch > 1 ? 1 << 1 : 0, out_scales);
  }

  memory& value(int id) { return values_[root_[id]]; }
  memory::dims dims(int id) const { return with_batch(batch_, shapes_[id]); }
  const dnnl::engine& eng() const { return impl_.eng; }

  /// The consumer of `id` when it has exactly one and is not the network output itself.
  int sole_user(int id) const {
    if (id == net_.output() || users_[id].size() != 1) return -1;
    return users_[id][0];
  }

  void add_step(const std::string& node, dnnl::primitive p, std::unordered_map<int, memory> args) {
    Step s;
    s.node = node;
    s.primitive = std::move(p);
    s.args = std::move(args);
    impl_.steps.push_back(std::move(s));
  }

  /// Value `id` in layout `md`: the value itself or a reorder of it made once.
  memory as(int id, const memory::desc& md, const std::string& consumer) {
    const memory& src = value(id);
    if (src.get_desc() == md) return src;
    for (const auto& [cached_md, mem] : converted_[root_[id]])
      if (cached_md == md) return mem;
    memory dst(md, eng());
    add_step(consumer, dnnl::reorder(src, dst), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}});
    converted_[root_[id]].emplace_back(md, dst);
    return dst;
  }

  /// Reorders constant data from plain `user` layout into `md` now (weights, once).
  memory constant(const memory::dims& d, Tag user_tag, const float* data, const memory::desc& md) {
    memory user(memory::desc(d, Dt::f32, user_tag), eng());
    std::memcpy(user.get_data_handle(), data, user.get_desc().get_size());
    if (md == user.get_desc()) return user;
    memory dst(md, eng());
    dnnl::reorder(user, dst).execute(impl_.strm, user, dst);
    impl_.strm.wait();
    return dst;
  }

  /// Reorders constant s8 data from plain `user_tag` layout into `md` now (int8 weights, once).
  memory constant_s8(const memory::dims& d, Tag user_tag, const int8_t* data,
                     const memory::desc& md) {
    memory user(memory::desc(d, Dt::s8, user_tag), eng());
    std::memcpy(user.get_data_handle(), data, user.get_desc().get_size());
    if (md == user.get_desc()) return user;
    memory dst(md, eng());
    dnnl::reorder(user, dst).execute(impl_.strm, user, dst);
    impl_.strm.wait();
    return dst;
  }

  /// Appends the activation that is `last`'s only consumer (if any) to `po`; moves `last` on.
  void fuse_activation(int& last, dnnl::post_ops& po) {
    const int u = sole_user(last);
    if (u < 0) return;
    switch (net_.node(u).op) {
      case OpKind::kReLU:
        po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
        break;
      case OpKind::kReLU6:
        po.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, 0.0f, 6.0f);
        break;
      case OpKind::kHardswish:
        po.append_eltwise(1.0f, dnnl::algorithm::eltwise_hardswish, 0.0f, 0.0f);
        break;
      default:
        return;
    }
    fused_[u] = true;
    last = u;
  }

  void alias(int id, int of) { root_[id] = root_[of]; }

  void compile_node(int id) {
    const Node& n = net_.node(id);
    switch (n.op) {
      case OpKind::kInput: {
        impl_.in_shape = dims(id);
        impl_.input_mem = memory(plain_desc(impl_.in_shape), eng());
        values_[id] = impl_.input_mem;
        return;
      }
      case OpKind::kConv2d:
        return conv(id);
      case OpKind::kLinear:
        return linear(id);
      case OpKind::kBatchNorm:
        return batch_norm(id);
      case OpKind::kReLU:
        return eltwise(id, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
      case OpKind::kReLU6:
        return eltwise(id, dnnl::algorithm::eltwise_clip, 0.0f, 6.0f);
      case OpKind::kHardswish:
        return eltwise(id, dnnl::algorithm::eltwise_hardswish, 0.0f, 0.0f);
      case OpKind::kAdd:
        return add(id);
      case OpKind::kConcat:
        return concat(id);
      case OpKind::kMaxPool:
      case OpKind::kAvgPool:
        return pool(id);
      case OpKind::kAdaptiveAvgPool:
        return adaptive_pool(id);
      case OpKind::kFlatten:
        return flatten(id);
      case OpKind::kDropout:
        return alias(id, n.inputs.at(0));
      case OpKind::kFakeQuant:
        if (feeds_only_int8(id)) return;  // its int8 consumers quantize its input themselves
        return fake_quant(id);
    }
    throw InputError("oneDNN engine: node '" + n.name + "' has an unsupported op");
  }

  void conv(int id) {
    const Node& n = net_.node(id);
    const auto& a = n.attrs;
    const int in = n.inputs.at(0);
    graph::Tensor w = param(n, "weight");
    const int64_t out_ch = w.shape.at(0);
    const int64_t per_out = w.numel() / out_ch;
    std::vector<float> bias(out_ch, 0.0f);
    if (n.params.count("bias")) bias = param(n, "bias").data;

    const std::optional<Int8Layer>& int8 = int8_[id];
    std::vector<double> mult(out_ch, 1.0);  // per output channel, folded BN
    int last = id;
    const int bn = sole_user(id);
    if (bn >= 0 && net_.node(bn).op == OpKind::kBatchNorm) {
      // y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta, folded per output channel.
      const Node& b = net_.node(bn);
      const auto& gamma = param(b, "weight").data;
      const auto& beta = param(b, "bias").data;
      const auto& mean = param(b, "running_mean").data;
      const auto& var = param(b, "running_var").data;
      for (int64_t o = 0; o < out_ch; ++o) {
        const double scale = gamma[o] / std::sqrt(static_cast<double>(var[o]) + b.attrs.eps);
        mult[o] = scale;
        if (!int8)
          for (int64_t k = 0; k < per_out; ++k)
            w.data[o * per_out + k] *= static_cast<float>(scale);
        bias[o] = static_cast<float>((bias[o] - mean[o]) * scale + beta[o]);
      }
      fused_[bn] = true;
      last = bn;
    }
    dnnl::post_ops po;
    fuse_activation(last, po);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    std::vector<int8_t> codes;
    std::vector<float> out_scales;
    if (int8) int8_params(*int8, mult, std::vector<float>(bias), codes, out_scales, bias, attr);

    const int64_t g = a.groups;
    memory::dims w_dims;
    Tag w_tag;
    if (g == 1) {
      w_dims = {out_ch, w.shape[1], w.shape[2], w.shape[3]};
      w_tag = Tag::oihw;
    } else {
      w_dims = {g, out_ch / g, w.shape[1], w.shape[2], w.shape[3]};
      w_tag = Tag::goihw;
    }
    const memory::dims src_d = dims(in), dst_d = dims(id);
    const memory::dims strides{a.stride[0], a.stride[1]};
    const memory::dims dilates{a.dilation[0] - 1, a.dilation[1] - 1};
    const memory::dims pad{a.padding[0], a.padding[1]};
    auto any = [](const memory::dims& d, Dt t = Dt::f32) { return memory::desc(d, t, Tag::any); };
    dnnl::convolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
        any(src_d, int8 ? Dt::u8 : Dt::f32), any(w_dims, int8 ? Dt::s8 : Dt::f32),
        memory::desc({out_ch}, Dt::f32, Tag::a), any(dst_d), strides, dilates, pad, pad);
    dnnl::convolution_forward::primitive_desc pd(desc, attr, eng());
    memory weights = int8 ? constant_s8(w_dims, w_tag, codes.data(), pd.weights_desc())
                          : constant(w_dims, w_tag, w.data.data(), pd.weights_desc());
    memory bias_mem = constant({out_ch}, Tag::a, bias.data(), pd.bias_desc());
    memory src =
        int8 ? quantized_input(int8->fq, pd.src_desc(), n.name) : as(in, pd.src_desc(), n.name);
    ++(int8 ? impl_.int8_layers : impl_.fp32_layers);
    memory dst(pd.dst_desc(), eng());
    add_step(n.name, dnnl::convolution_forward(pd),
             {{DNNL_ARG_SRC, src},
              {DNNL_ARG_WEIGHTS, weights},
              {DNNL_ARG_BIAS, bias_mem},
              {DNNL_ARG_DST, dst}});
    values_[last] = dst;
  }

  void linear(int id) {
    const Node& n = net_.node(id);
    const int in = n.inputs.at(0);
    const graph::Tensor& w = param(n, "weight");
    const int64_t out_f = w.shape.at(0), in_f = w.shape.at(1);
    std::vector<float> bias(out_f, 0.0f);
    if (n.params.count("bias")) bias = param(n, "bias").data;
    const std::optional<Int8Layer>& int8 = int8_[id];
    int last = id;
    dnnl::post_ops po;
    fuse_activation(last, po);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    std::vector<int8_t> codes;
    std::vector<float> out_scales;
    if (int8)
      int8_params(*int8, std::vector<double>(out_f, 1.0), std::vector<float>(bias), codes,
                  out_scales, bias, attr);
    const memory::dims src_d = dims(in);
    if (src_d.size() != 2)
      throw InputError("oneDNN engine: linear node '" + n.name + "' needs a flattened input, got " +
                       graph::shape_str(shapes_[in]));
    dnnl::inner_product_forward::desc desc(
        dnnl::prop_kind::forward_inference, memory::desc(src_d, int8 ? Dt::u8 : Dt::f32, Tag::any),
        memory::desc({out_f, in_f}, int8 ? Dt::s8 : Dt::f32, Tag::any),
        memory::desc({out_f}, Dt::f32, Tag::a), memory::desc(dims(id), Dt::f32, Tag::any));
    dnnl::inner_product_forward::primitive_desc pd(desc, attr, eng());
    memory weights = int8 ? constant_s8({out_f, in_f}, Tag::oi, codes.data(), pd.weights_desc())
                          : constant({out_f, in_f}, Tag::oi, w.data.data(), pd.weights_desc());
    memory bias_mem = constant({out_f}, Tag::a, bias.data(), pd.bias_desc());
    memory src =
        int8 ? quantized_input(int8->fq, pd.src_desc(), n.name) : as(in, pd.src_desc(), n.name);
    ++(int8 ? impl_.int8_layers : impl_.fp32_layers);
    memory dst(pd.dst_desc(), eng());
    add_step(n.name, dnnl::inner_product_forward(pd),
             {{DNNL_ARG_SRC, src},
              {DNNL_ARG_WEIGHTS, weights},
              {DNNL_ARG_BIAS, bias_mem},
              {DNNL_ARG_DST, dst}});
    values_[last] = dst;
  }

  void batch_norm(int id) {
    const Node& n = net_.node(id);
    const int in = n.inputs.at(0);
    const memory src = value(in);
    const auto flags =
        dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale_shift;
    dnnl::batch_normalization_forward::desc desc(dnnl::prop_kind::forward_inference, src.get_desc(),
                                                 static_cast<float>(n.attrs.eps), flags);
    dnnl::batch_normalization_forward::primitive_desc pd(desc, eng());
    const auto& gamma = param(n, "weight").data;
    const auto& beta = param(n, "bias").data;
    std::vector<float> scale_shift(gamma);
    scale_shift.insert(scale_shift.end(), beta.begin(), beta.end());
    const int64_t c = static_cast<int64_t>(gamma.size());
    memory ss = constant({2, c}, Tag::nc, scale_shift.data(), pd.weights_desc());
    memory mean = constant({c}, Tag::a, param(n, "running_mean").data.data(), pd.mean_desc());
    memory var = constant({c}, Tag::a, param(n, "running_var").data.data(), pd.variance_desc());
    memory dst(pd.dst_desc(), eng());
    add_step(n.name, dnnl::batch_normalization_forward(pd),
             {{DNNL_ARG_SRC, src},
              {DNNL_ARG_MEAN, mean},
              {DNNL_ARG_VARIANCE, var},
              {DNNL_ARG_SCALE_SHIFT, ss},
              {DNNL_ARG_DST, dst}});
    values_[id] = dst;
  }

  void eltwise(int id, dnnl::algorithm alg, float alpha, float beta) {
    const Node& n = net_.node(id);
    const memory src = value(n.inputs.at(0));
    dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, alg, src.get_desc(), alpha,
                                     beta);
    dnnl::eltwise_forward::primitive_desc pd(desc, eng());
    memory dst(pd.dst_desc(), eng());
    add_step(n.name, dnnl::eltwise_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    values_[id] = dst;
  }

  void add(int id) {
    const Node& n = net_.node(id);
    if (n.inputs.size() < 2) throw InputError("add node '" + n.name + "' needs 2+ inputs");
    const memory src0 = value(n.inputs[0]);
    const memory::desc md = src0.get_desc();
    memory dst(md, eng());
    int last = id;
    dnnl::post_ops po;
    fuse_activation(last, po);
    for (size_t k = 1; k < n.inputs.size(); ++k) {
      const bool final_add = k + 1 == n.inputs.size();
      dnnl::primitive_attr attr;
      if (final_add) attr.set_post_ops(po);
      const memory lhs = k == 1 ? src0 : dst;  // later additions accumulate in place
      const memory rhs = as(n.inputs[k], md, n.name);
      dnnl::binary::desc desc(dnnl::algorithm::binary_add, md, md, md);
      dnnl::binary::primitive_desc pd(desc, attr, eng());
      add_step(n.name, dnnl::binary(pd),
               {{DNNL_ARG_SRC_0, lhs}, {DNNL_ARG_SRC_1, rhs}, {DNNL_ARG_DST, dst}});
    }
    values_[last] = dst;
  }

  void concat(int id) {
    // Plain layout keeps concat simple for any channel counts; no zoo model uses concat.
    const Node& n = net_.node(id);
    std::vector<memory::desc> mds;
    std::unordered_map<int, memory> args;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      memory m = as(n.inputs[k], plain_desc(dims(n.inputs[k])), n.name);
      mds.push_back(m.get_desc());
      args.emplace(DNNL_ARG_MULTIPLE_SRC + static_cast<int>(k), m);
    }
    const memory::desc dst_md = plain_desc(dims(id));
    dnnl::concat::primitive_desc pd(dst_md, 1, mds, eng());
    memory dst(pd.dst_desc(), eng());
    args.emplace(DNNL_ARG_DST, dst);
    add_step(n.name, dnnl::concat(pd), std::move(args));
    values_[id] = dst;
  }

  void pooling(int id, dnnl::algorithm alg, const memory::dims& kernel, const memory::dims& strides,
               const memory::dims& pad_l, const memory::dims& pad_r) {
    const Node& n = net_.node(id);
    const memory src = value(n.inputs.at(0));
    dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, alg, src.get_desc(),
                                     memory::desc(dims(id), Dt::f32, Tag::any), strides, kernel,
                                     pad_l, pad_r);
    dnnl::pooling_forward::primitive_desc pd(desc, eng());
    memory dst(pd.dst_desc(), eng());
    add_step(n.name, dnnl::pooling_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    values_[id] = dst;
  }

  void pool(int id) {
    const Node& n = net_.node(id);
    const auto& a = n.attrs;
    const auto& in_s = shapes_[n.inputs.at(0)];
    const auto& out_s = shapes_[id];
    memory::dims pad_r(2);
    bool past_padding = false;  // a ceil-mode window reaches beyond the padded input
    for (int d = 0; d < 2; ++d) {
      const int64_t need = (out_s[d + 1] - 1) * a.stride[d] + a.kernel[d] - in_s[d + 1];
      pad_r[d] = std::max<int64_t>(0, need - a.padding[d]);
      if (pad_r[d] > a.padding[d]) past_padding = true;
    }
    dnnl::algorithm alg = dnnl::algorithm::pooling_max;
    if (n.op == OpKind::kAvgPool) {
      // PyTorch divides by the window clipped to the padded input: with no padding that is the
      // count of real elements (exclude_padding); with padding and windows beyond it neither
      // oneDNN algorithm matches.
      if (!past_padding) {
        alg = dnnl::algorithm::pooling_avg_include_padding;
      } else if (a.padding[0] == 0 && a.padding[1] == 0) {
        alg = dnnl::algorithm::pooling_avg_exclude_padding;
      } else {
        throw InputError("oneDNN engine: avg_pool node '" + n.name +
                         "' with ceil_mode and padding is not supported");
      }
    }
    pooling(id, alg, {a.kernel[0], a.kernel[1]}, {a.stride[0], a.stride[1]},
            {a.padding[0], a.padding[1]}, pad_r);
  }

  void adaptive_pool(int id) {
    const Node& n = net_.node(id);
    const int in = n.inputs.at(0);
    const auto& in_s = shapes_[in];
    const auto& out_s = shapes_[id];
    if (in_s == out_s) return alias(id, in);
    memory::dims kernel(2);
    for (int d = 0; d < 2; ++d) {
      if (in_s[d + 1] % out_s[d + 1] != 0)
        throw InputError("oneDNN engine: adaptive_avg_pool node '" + n.name + "' from " +
                         graph::shape_str(in_s) + " to " + graph::shape_str(out_s) +
                         " is not supported (output sizes must divide the input)");
      kernel[d] = in_s[d + 1] / out_s[d + 1];
    }
    pooling(id, dnnl::algorithm::pooling_avg_exclude_padding, kernel, kernel, {0, 0}, {0, 0});
  }

  void flatten(int id) {
    const Node& n = net_.node(id);
    const int in = n.inputs.at(0);
    if (shapes_[in].size() == 1) return alias(id, in);
    const memory plain = as(in, plain_desc(dims(in)), n.name);
    // Row-major NCHW and row-major {N, C*H*W} are the same bytes.
    values_[id] = memory(plain_desc(dims(id)), eng(), plain.get_data_handle());
  }

  void fake_quant(int id) {
    const Node& n = net_.node(id);
    const memory src = value(n.inputs.at(0));
    memory dst(src.get_desc(), eng());
    const auto& a = n.attrs;
    if (!(a.q_scale > 0)) throw InputError("fake_quant node '" + n.name + "' has scale <= 0");
    // Same arithmetic as LibTorch's fake_quantize_per_tensor_affine on the CPU.
    const float scale = static_cast<float>(a.q_scale);
    const float inv_scale = 1.0f / scale;
    const float zp = static_cast<float>(a.q_zero_point);
    const float q_min = static_cast<float>(a.q_min), q_max = static_cast<float>(a.q_max);
    const size_t count = src.get_desc().get_size() / sizeof(float);
    Step s;
    s.node = n.name;
    s.custom = [=]() {
      const float* x = static_cast<const float*>(src.get_data_handle());
      float* y = static_cast<float*>(dst.get_data_handle());
      for (size_t i = 0; i < count; ++i) {
        const float q = std::min(std::max(std::nearbyint(x[i] * inv_scale) + zp, q_min), q_max);
        y[i] = (q - zp) * scale;
      }
    };
    impl_.steps.push_back(std::move(s));
    values_[id] = dst;
  }
};

}  // namespace

OneDnnEngine::OneDnnEngine(const graph::Network& net, int64_t batch, const std::string& precision)
    : impl_(std::make_unique<Impl>()) {
  const auto supported = supported_precisions();
  if (std::find(supported.begin(), supported.end(), precision) == supported.end())
    throw InputError("oneDNN engine: precision '" + precision +
                     "' is not supported on this CPU (bf16/f16 convolutions need AVX-512); "
                     "supported: fp32, int8");
  if (batch < 1) throw InputError("oneDNN engine: batch must be >= 1");
  impl_->precision = precision;
  Compiler(net, batch, *impl_).compile();
}

OneDnnEngine::~OneDnnEngine() = default;
OneDnnEngine::OneDnnEngine(OneDnnEngine&&) noexcept = default;
OneDnnEngine& OneDnnEngine::operator=(OneDnnEngine&&) noexcept = default;

std::vector<float> OneDnnEngine::run(const float* input) {
  Impl& im = *impl_;
  std::memcpy(im.input_mem.get_data_handle(), input, im.input_mem.get_desc().get_size());
  for (Step& s : im.steps) {
    try {
      if (s.custom) {
        im.strm.wait();
        s.custom();
      } else {
        s.primitive.execute(im.strm, s.args);
      }
    } catch (const dnnl::error& e) {
      throw InputError(std::string("oneDNN: ") + e.what() + " at node '" + s.node + "'");
    }
  }
  im.strm.wait();
  const float* out = static_cast<const float*>(im.output_mem.get_data_handle());
  return std::vector<float>(out, out + im.output_mem.get_desc().get_size() / sizeof(float));
}

const graph::Shape& OneDnnEngine::output_shape() const { return impl_->out_shape; }
const graph::Shape& OneDnnEngine::input_shape() const { return impl_->in_shape; }
const std::string& OneDnnEngine::precision() const { return impl_->precision; }
int OneDnnEngine::num_steps() const { return static_cast<int>(impl_->steps.size()); }

int64_t OneDnnEngine::int8_layers() const { return impl_->int8_layers; }
int64_t OneDnnEngine::fp32_layers() const { return impl_->fp32_layers; }

bool OneDnnEngine::exact_full_range_int8() { return cpu_has_vnni(); }

std::vector<std::string> OneDnnEngine::supported_precisions() { return {"fp32", "int8"}; }

}  // namespace tightfit::targets
