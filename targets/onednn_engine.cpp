// How a network becomes oneDNN primitives (one pass over the nodes in topological order):
//   - every node's output is a dnnl::memory whose desc is whatever its producer chose; aliases
//     (dropout, flatten of a vector) share their input's memory;
//   - conv2d: batch_norm folded into weights/bias when the conv is its only producer and the BN
//     its only consumer, then an activation that is the only consumer becomes a post-op;
//     src/weights/dst use format_tag::any so oneDNN picks its fastest (blocked) layouts;
//   - a consumer that wants another layout gets one reorder per (value, layout), shared by all
//     consumers that want it; weights are reordered once, here;
//   - fake_quant is a small loop over the raw buffer: it is per-tensor and elementwise, so the
//     layout does not matter (padding lanes of blocked layouts are never read as values);
//   - precision "int8": a conv/linear whose input is an unsigned fake_quant (zero point 0,
//     q_min >= 0) and whose weights lie on a symmetric per-output-channel grid of at most 8 bits
//     (the rule and the grids shared with LibTorch's int8 model: targets/int8.h) runs as a
//     u8 x s8 primitive: the weights become their integer codes and act_scale *
//     weight_scale[o] * bn_scale[o] is the per-channel output scale (oneDNN 2.x scales the
//     accumulator plus bias, so the bias is divided by it). Its output is f32, or, when its only
//     consumer (after the fused activation, and through dropout, flatten and max pooling, which
//     map codes to codes exactly) is an unsigned fake_quant read only by int8 layers, that
//     fake_quant's u8 codes: the activation post-op divides by the fake_quant's scale, a clip
//     post-op applies its range and oneDNN's conversion rounds to nearest even, as fake_quant
//     does; the nodes on the way then run on the codes. Elsewhere a fake_quant read only by
//     int8 layers becomes a parallel loop writing u8 codes in the layout the consumer picked.
//     Without VNNI a u8 x s8 product pair saturates in int16 unless activations are <= 127 or
//     weights are in [-64, 63]; a layer meeting neither runs in fp32 instead.
//   - precision "bf16": on a CPU with AVX512-BF16 (cpu_has_bf16), a conv/linear whose weights
//     are all bfloat16 values (a policy's 16-bit bf16 weights) runs with bf16 inputs and weights,
//     f32 accumulation and f32 output; its input is converted by the reorder in front of it. The
//     rest runs in fp32, and everything does on a CPU without bf16 dot products.
// run() executes the list in order; the output is reordered to plain row-major at the end.

#include "targets/onednn_engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <unordered_map>
#include <utility>

#include "core/errors.h"
#include "core/json.h"
#include "targets/int8.h"
#include "targets/lowering.h"

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

/// `md` with its data type replaced (same dims and layout).
memory::desc with_type(const memory::desc& md, Dt type) {
  memory::desc out = md;
  out.data.data_type = static_cast<dnnl_data_type_t>(type);
  return out;
}

/// Below this many values a loop is not worth waking the OpenMP threads for.
constexpr size_t kParallelMin = 16384;

// The grid's arithmetic (targets/int8.h) in OpenMP loops over raw oneDNN buffers; LibTorch's
// int8 model runs the same arithmetic on tensors with at::parallel_for.

/// y = fake_quant(x), elementwise (same arithmetic as LibTorch's fake quantization on the CPU).
void fake_quantize(const float* x, float* y, size_t n, const FakeQuantGrid& g) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (size_t i = 0; i < n; ++i) y[i] = g.level(x[i]) * g.scale;
}

/// y = fake_quant's integer codes of x (zero point 0, codes within [0, 255]).
void quantize_u8(const float* x, uint8_t* y, size_t n, const FakeQuantGrid& g) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<uint8_t>(static_cast<int>(g.level(x[i])));
}

/// One entry of the execution list: a primitive with its arguments or a custom loop.
struct Step {
  std::string node;      ///< the node it computes (reorders: the consumer that needed them)
  bool reorder = false;  ///< a layout or type conversion between nodes
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
  std::string precision;  ///< what ran: fp32, int8, int8+fp32, bf16 or bf16+fp32
  int64_t int8_layers = 0, bf16_layers = 0, fp32_layers = 0;
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
    codes_of_.assign(n, -1);
    if (impl_.precision == "int8") int8_ = plan_int8_layers(net_, cpu_has_vnni());
    bf16_ = plan_bf16_layers(net_, impl_.precision == "bf16" && cpu_has_bf16());
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
    const int64_t low = impl_.int8_layers + impl_.bf16_layers;
    const std::string kind = impl_.int8_layers > 0 ? "int8" : "bf16";
    impl_.precision = low == 0 ? "fp32" : impl_.fp32_layers == 0 ? kind : kind + "+fp32";
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
  std::vector<bool> bf16_;  ///< conv/linear nodes run with bf16 inputs and weights
  /// node -> the fake_quant whose u8 codes its value holds (-1: its own f32 values)
  std::vector<int> codes_of_;

  /// An activation fused into its producer as an eltwise post-op.
  /// An elementwise activation as oneDNN eltwise stages (hardsigmoid is linear, then clip).
  struct Activation {
    struct Stage {
      dnnl::algorithm alg;
      float alpha = 0, beta = 0;
    };
    std::vector<Stage> stages;

    /// Appends the stages as post-ops; the last one's output is multiplied by `out_scale`.
    void append_to(dnnl::post_ops& po, float out_scale = 1.0f) const {
      for (size_t k = 0; k < stages.size(); ++k)
        po.append_eltwise(k + 1 == stages.size() ? out_scale : 1.0f, stages[k].alg, stages[k].alpha,
                          stages[k].beta);
    }
  };

  /// The oneDNN form of an activation node, or none for other ops.
  static std::optional<Activation> activation_of(OpKind op) {
    using A = dnnl::algorithm;
    switch (op) {
      case OpKind::kReLU:
        return Activation{{{A::eltwise_relu, 0.0f, 0.0f}}};
      case OpKind::kReLU6:
        return Activation{{{A::eltwise_clip, 0.0f, 6.0f}}};
      case OpKind::kHardswish:
        return Activation{{{A::eltwise_hardswish, 0.0f, 0.0f}}};
      case OpKind::kHardsigmoid:  // clip(x / 6 + 1/2, 0, 1), PyTorch's definition
        return Activation{{{A::eltwise_linear, 1.0f / 6.0f, 0.5f}, {A::eltwise_clip, 0.0f, 1.0f}}};
      case OpKind::kSigmoid:
        return Activation{{{A::eltwise_logistic, 0.0f, 0.0f}}};
      case OpKind::kSiLU:  // x * sigmoid(alpha x) with alpha = 1
        return Activation{{{A::eltwise_swish, 1.0f, 0.0f}}};
      case OpKind::kGELU:
        return Activation{{{A::eltwise_gelu_erf, 0.0f, 0.0f}}};
      case OpKind::kTanh:
        return Activation{{{A::eltwise_tanh, 0.0f, 0.0f}}};
      default:
        return std::nullopt;
    }
  }

  /// How a layer writes its output: the post-ops after the (scaled) accumulator, the data type
  /// and the node whose value the output is.
  struct OutputPlan {
    dnnl::post_ops po;
    Dt type = Dt::f32;
    int node = -1;
    int fq = -1;            ///< u8: the fake_quant whose codes are written
    std::vector<int> path;  ///< u8: nodes between `node` and `fq` that carry the codes on
  };

  /// True when `id` maps fake_quant codes to codes of the same grid exactly: aliases, flatten and
  /// max pooling (quantization is monotonic, so the max of codes is the code of the max; padding
  /// reads as the lowest code). LibTorch's int8 model also passes ReLU and ReLU6 on the way to an
  /// output grid (targets/libtorch_int8.cpp, output_grid): it runs them on quantized tensors,
  /// while here activations are post-ops fused before this walk starts, and a standalone one is an
  /// f32 eltwise primitive.
  bool preserves_codes(int id) const {
    switch (net_.node(id).op) {
      case OpKind::kDropout:
      case OpKind::kFlatten:
      case OpKind::kMaxPool:
        return true;
      default:
        return false;
    }
  }

  /// True when every consumer of fake_quant `id` runs in int8 (and reads the u8 codes instead).
  bool feeds_only_int8(int id) const {
    if (id == net_.output() || users_[id].empty()) return false;
    return std::all_of(users_[id].begin(), users_[id].end(),
                       [&](int u) { return int8_[u].has_value(); });
  }

  /// u8 codes of fake_quant `fq`'s input, in layout `u8_md`: the codes its producer wrote (see
  /// output_plan), or the fake_quant's own rounding and clamping written as integers.
  memory quantized_input(int fq, const memory::desc& u8_md, const std::string& consumer) {
    if (value(fq).get(true) != nullptr) return as(fq, u8_md, consumer);
    const Node& f = net_.node(fq);
    const memory src = as(f.inputs.at(0), with_type(u8_md, Dt::f32), consumer);
    memory dst(u8_md, eng());
    const FakeQuantGrid grid(f.attrs);
    const size_t count = u8_md.get_size();
    Step s;
    s.node = f.name;
    s.custom = [=]() {
      quantize_u8(static_cast<const float*>(src.get_data_handle()),
                  static_cast<uint8_t*>(dst.get_data_handle()), count, grid);
    };
    impl_.steps.push_back(std::move(s));
    values_[root_[fq]] = dst;
    return dst;
  }

  /// Integer weights, output scales and bias for an int8 layer whose fp32 form would be
  /// (codes * scales) * mult[o] + bias[o] on input codes * act_scale. oneDNN-specific: its 2.x
  /// primitives take one scale per channel for the accumulator (LibTorch's quantized weights
  /// carry the weight scales and its input tensor the activation scale).
  void int8_params(const Int8Layer& layer, const std::vector<double>& mult,
                   const std::vector<double>& bias, std::vector<int8_t>& codes,
                   std::vector<float>& out_scales, std::vector<float>& scaled_bias) const {
    const double act_scale = FakeQuantGrid(net_.node(layer.fq).attrs).scale;
    Int8Weights folded = with_multipliers(layer, mult);
    codes = std::move(folded.codes);
    out_scales.assign(folded.scales.size(), 1.0f);
    scaled_bias.assign(folded.scales.size(), 0.0f);
    for (size_t o = 0; o < folded.scales.size(); ++o) {
      out_scales[o] = static_cast<float>(act_scale * folded.scales[o]);
      // oneDNN 2.x applies the output scale to accumulator + bias.
      scaled_bias[o] = static_cast<float>(bias[o] / static_cast<double>(out_scales[o]));
    }
  }

  /// What a conv/linear primitive is made of once BN is folded: weights in the user layout
  /// (f32 values, or s8 codes with per-channel output scales for int8) and the bias.
  struct LayerParams {
    memory::dims dims;
    Tag tag = Tag::undef;
    std::vector<float> values;  ///< f32 weights (empty for int8)
    std::vector<int8_t> codes;  ///< int8 weights (empty for f32)
    std::vector<float> out_scales;
    std::vector<float> bias;
  };

  /// `p`'s weights and bias for layer `id` with per-output-channel multipliers `mult` (folded
  /// BN; 1 for none) already applied to `w` (f32) or to the output scales (int8).
  LayerParams layer_params(int id, graph::Tensor w, const std::vector<double>& mult,
                           const std::vector<double>& bias, memory::dims dims, Tag tag) const {
    LayerParams p;
    p.dims = std::move(dims);
    p.tag = tag;
    if (const auto& int8 = int8_[id]) {
      int8_params(*int8, mult, bias, p.codes, p.out_scales, p.bias);
      return p;
    }
    const size_t per_out = w.data.size() / mult.size();
    for (size_t o = 0; o < mult.size(); ++o)
      if (mult[o] != 1.0)
        for (size_t k = 0; k < per_out; ++k) w.data[o * per_out + k] *= static_cast<float>(mult[o]);
    p.values = std::move(w.data);
    p.bias.assign(bias.begin(), bias.end());
    return p;
  }

  /// Emits conv/linear `id` as a `Primitive` whose op desc `make_desc(src type, weights type, dst
  /// type)` builds, with `act` fused and its output as output_plan says; where oneDNN has no
  /// kernel writing u8 it writes f32 and the consumer quantizes.
  template <typename Primitive, typename MakeDesc>
  void emit_layer(int id, int last, const std::optional<Activation>& act, const LayerParams& p,
                  MakeDesc make_desc) {
    const Node& n = net_.node(id);
    const bool int8 = !p.codes.empty();
    const bool bf16 = !int8 && bf16_[id];
    const Dt src_type = int8 ? Dt::u8 : bf16 ? Dt::bf16 : Dt::f32;
    const Dt weight_type = int8 ? Dt::s8 : bf16 ? Dt::bf16 : Dt::f32;
    const auto primitive_desc = [&](const OutputPlan& plan) {
      dnnl::primitive_attr attr;
      if (int8) attr.set_output_scales(p.out_scales.size() > 1 ? 1 << 1 : 0, p.out_scales);
      attr.set_post_ops(plan.po);
      return typename Primitive::primitive_desc(make_desc(src_type, weight_type, plan.type), attr,
                                                eng());
    };
    OutputPlan plan = output_plan(last, act, int8);
    std::optional<typename Primitive::primitive_desc> pd;
    try {
      pd = primitive_desc(plan);
    } catch (const dnnl::error&) {
      if (plan.type == Dt::f32) throw;
      plan = output_plan(last, act, false);
      pd = primitive_desc(plan);
    }
    const memory weights = int8 ? constant_s8(p.dims, p.tag, p.codes.data(), pd->weights_desc())
                                : constant(p.dims, p.tag, p.values.data(), pd->weights_desc());
    const memory bias =
        constant({static_cast<int64_t>(p.bias.size())}, Tag::a, p.bias.data(), pd->bias_desc());
    const memory src = int8 ? quantized_input(int8_[id]->fq, pd->src_desc(), n.name)
                            : as(n.inputs.at(0), pd->src_desc(), n.name);
    ++(int8 ? impl_.int8_layers : bf16 ? impl_.bf16_layers : impl_.fp32_layers);
    memory dst(pd->dst_desc(), eng());
    add_step(n.name, Primitive(*pd),
             {{DNNL_ARG_SRC, src},
              {DNNL_ARG_WEIGHTS, weights},
              {DNNL_ARG_BIAS, bias},
              {DNNL_ARG_DST, dst}});
    values_[plan.node] = dst;
    if (plan.fq >= 0) {
      codes_of_[plan.node] = plan.fq;
      for (int p : plan.path) codes_of_[p] = plan.fq;
    }
  }

  memory& value(int id) { return values_[root_[id]]; }
  memory::dims dims(int id) const { return with_batch(batch_, shapes_[id]); }
  const dnnl::engine& eng() const { return impl_.eng; }

  /// The consumer of `id` when it has exactly one and is not the network output itself.
  /// The one node that reads `id`, when it may be fused into `id`'s primitive: neither of the
  /// two is the network's output (which may sit anywhere, e.g. a feature extractor's ReLU), so
  /// the output always keeps a value of its own.
  int sole_user(int id) const {
    if (id == net_.output() || users_[id].size() != 1 || users_[id][0] == net_.output()) return -1;
    return users_[id][0];
  }

  void add_step(const std::string& node, dnnl::primitive p, std::unordered_map<int, memory> args,
                bool reorder = false) {
    Step s;
    s.node = node;
    s.reorder = reorder;
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
    add_step(consumer, dnnl::reorder(src, dst), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}}, true);
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

  /// The activation that is `last`'s only consumer, if any (marked fused; `last` moves on).
  std::optional<Activation> fuse_activation(int& last) {
    const int u = sole_user(last);
    if (u < 0) return std::nullopt;
    auto act = activation_of(net_.node(u).op);
    if (!act) return std::nullopt;
    fused_[u] = true;
    last = u;
    return act;
  }

  /// f32 with the fused activation; for an int8 layer whose output (after the activation) is
  /// read only by an unsigned fake_quant that only int8 layers read, that fake_quant's u8
  /// codes: activation scaled by 1 / q_scale, then clipped to the code range; oneDNN rounds to
  /// nearest even and saturates when it converts to u8.
  OutputPlan output_plan(int last, const std::optional<Activation>& act, bool u8_allowed) {
    OutputPlan out;
    out.node = last;
    int fq = u8_allowed ? sole_user(last) : -1;
    std::vector<int> path;
    for (; fq >= 0 && preserves_codes(fq); fq = sole_user(fq)) path.push_back(fq);
    if (fq >= 0 && is_u8_fake_quant(net_.node(fq)) && feeds_only_int8(fq)) {
      const auto& a = net_.node(fq).attrs;
      const float inv_scale = FakeQuantGrid(a).inv_scale;
      if (act)
        act->append_to(out.po, inv_scale);
      else
        out.po.append_eltwise(1.0f, dnnl::algorithm::eltwise_linear, inv_scale, 0.0f);
      if (a.q_min > 0 || a.q_max < kU8CodeMax)
        out.po.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, static_cast<float>(a.q_min),
                              static_cast<float>(a.q_max));
      out.type = Dt::u8;
      out.fq = fq;
      out.path = std::move(path);
    } else if (act) {
      act->append_to(out.po);
    }
    return out;
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
      case OpKind::kReLU6:
      case OpKind::kHardswish:
      case OpKind::kHardsigmoid:
      case OpKind::kSigmoid:
      case OpKind::kSiLU:
      case OpKind::kGELU:
      case OpKind::kTanh:
        return eltwise(id, *activation_of(n.op));
      case OpKind::kAdd:
        return add(id);
      case OpKind::kMul:
        return mul(id);
      case OpKind::kSlice:
        return slice(id);
      case OpKind::kChannelShuffle:
        return shuffle(id);
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
        if (codes_of_[n.inputs.at(0)] == id) return alias(id, n.inputs.at(0));  // already codes
        if (feeds_only_int8(id)) return;  // its int8 consumers quantize its input themselves
        return fake_quant(id);
    }
    throw InputError("oneDNN engine: node '" + n.name + "' has an unsupported op");
  }

  void conv(int id) {
    const Node& n = net_.node(id);
    const auto& a = n.attrs;
    const graph::Tensor& w = param(n, "weight");
    const int64_t out_ch = w.shape.at(0);
    std::vector<double> bias(out_ch, 0.0);
    if (n.params.count("bias"))
      bias.assign(param(n, "bias").data.begin(), param(n, "bias").data.end());

    std::vector<double> mult(out_ch, 1.0);  // per output channel, folded BN
    int last = id;
    const int bn = sole_user(id);
    if (bn >= 0 && net_.node(bn).op == OpKind::kBatchNorm) {
      fold_batch_norm(net_.node(bn), mult, bias);
      fused_[bn] = true;
      last = bn;
    }
    const auto act = fuse_activation(last);

    const int64_t g = a.groups;
    const bool grouped = g > 1;
    memory::dims w_dims = grouped ? memory::dims{g, out_ch / g, w.shape[1], w.shape[2], w.shape[3]}
                                  : memory::dims{out_ch, w.shape[1], w.shape[2], w.shape[3]};
    const LayerParams p = layer_params(id, w, mult, bias, w_dims, grouped ? Tag::goihw : Tag::oihw);
    const memory::dims src_d = dims(n.inputs.at(0)), dst_d = dims(id);
    const memory::dims strides{a.stride[0], a.stride[1]};
    const memory::dims dilates{a.dilation[0] - 1, a.dilation[1] - 1};
    const memory::dims pad{a.padding[0], a.padding[1]};
    emit_layer<dnnl::convolution_forward>(id, last, act, p, [&](Dt src_t, Dt w_t, Dt dst_t) {
      return dnnl::convolution_forward::desc(
          dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
          memory::desc(src_d, src_t, Tag::any), memory::desc(w_dims, w_t, Tag::any),
          memory::desc({out_ch}, Dt::f32, Tag::a), memory::desc(dst_d, dst_t, Tag::any), strides,
          dilates, pad, pad);
    });
  }

  void linear(int id) {
    const Node& n = net_.node(id);
    const int in = n.inputs.at(0);
    const graph::Tensor& w = param(n, "weight");
    const int64_t out_f = w.shape.at(0), in_f = w.shape.at(1);
    std::vector<double> bias(out_f, 0.0);
    if (n.params.count("bias"))
      bias.assign(param(n, "bias").data.begin(), param(n, "bias").data.end());
    int last = id;
    const auto act = fuse_activation(last);
    const memory::dims src_d = dims(in);
    if (src_d.size() != 2)
      throw InputError("oneDNN engine: linear node '" + n.name + "' needs a flattened input, got " +
                       graph::shape_str(shapes_[in]));
    const LayerParams p =
        layer_params(id, w, std::vector<double>(out_f, 1.0), bias, {out_f, in_f}, Tag::oi);
    const memory::dims dst_d = dims(id);
    emit_layer<dnnl::inner_product_forward>(id, last, act, p, [&](Dt src_t, Dt w_t, Dt dst_t) {
      return dnnl::inner_product_forward::desc(
          dnnl::prop_kind::forward_inference, memory::desc(src_d, src_t, Tag::any),
          memory::desc({out_f, in_f}, w_t, Tag::any), memory::desc({out_f}, Dt::f32, Tag::a),
          memory::desc(dst_d, dst_t, Tag::any));
    });
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

  void eltwise(int id, const Activation& act) {
    const Node& n = net_.node(id);
    const memory src = value(n.inputs.at(0));
    const Activation::Stage& first = act.stages.front();
    dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, first.alg, src.get_desc(),
                                     first.alpha, first.beta);
    dnnl::post_ops po;
    Activation rest{{act.stages.begin() + 1, act.stages.end()}};
    rest.append_to(po);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    dnnl::eltwise_forward::primitive_desc pd(desc, attr, eng());
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
    if (const auto act = fuse_activation(last)) act->append_to(po);
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

  /// x * y: equal shapes, or y a {C, 1, 1} gate broadcast over H and W (oneDNN broadcasts a
  /// second source whose spatial dimensions are 1).
  void mul(int id) {
    const Node& n = net_.node(id);
    const memory src0 = value(n.inputs.at(0));
    const memory::desc md = src0.get_desc();
    const memory::dims gate_d = dims(n.inputs.at(1));
    const memory::desc gate_md = gate_d == dims(n.inputs.at(0)) ? md : plain_desc(gate_d);
    const memory src1 = as(n.inputs.at(1), gate_md, n.name);
    memory dst(md, eng());
    int last = id;
    dnnl::post_ops po;
    if (const auto act = fuse_activation(last)) act->append_to(po);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    dnnl::binary::desc desc(dnnl::algorithm::binary_mul, md, gate_md, md);
    dnnl::binary::primitive_desc pd(desc, attr, eng());
    add_step(n.name, dnnl::binary(pd),
             {{DNNL_ARG_SRC_0, src0}, {DNNL_ARG_SRC_1, src1}, {DNNL_ARG_DST, dst}});
    values_[last] = dst;
  }

  /// Channels [begin, end): a reorder from a view of the plain input into a dense tensor.
  void slice(int id) {
    const Node& n = net_.node(id);
    const memory plain = as(n.inputs.at(0), plain_desc(dims(n.inputs.at(0))), n.name);
    const memory::dims out_d = dims(id);
    const memory::desc view_md = plain.get_desc().submemory_desc(out_d, {0, n.attrs.begin, 0, 0});
    const memory view(view_md, eng(), plain.get_data_handle());
    memory dst(plain_desc(out_d), eng());
    add_step(n.name, dnnl::reorder(view, dst), {{DNNL_ARG_FROM, view}, {DNNL_ARG_TO, dst}});
    values_[id] = dst;
  }

  /// PyTorch's channel shuffle with g groups is oneDNN's shuffle with group size C / g.
  void shuffle(int id) {
    const Node& n = net_.node(id);
    const memory src = value(n.inputs.at(0));
    const int64_t channels = shapes_[id][0];
    dnnl::shuffle_forward::desc desc(dnnl::prop_kind::forward_inference, src.get_desc(), 1,
                                     channels / n.attrs.groups);
    dnnl::shuffle_forward::primitive_desc pd(desc, eng());
    memory dst(pd.dst_desc(), eng());
    add_step(n.name, dnnl::shuffle_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    values_[id] = dst;
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
                                     memory::desc(dims(id), src.get_desc().data_type(), Tag::any),
                                     strides, kernel, pad_l, pad_r);
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
    if (in_s[1] % out_s[1] != 0 || in_s[2] % out_s[2] != 0) return adaptive_pool_matmul(id);
    const memory::dims kernel{in_s[1] / out_s[1], in_s[2] / out_s[2]};
    pooling(id, dnnl::algorithm::pooling_avg_exclude_padding, kernel, kernel, {0, 0}, {0, 0});
  }

  /// Adaptive average pooling whose windows are not one uniform kernel (output sizes that do
  /// not divide the input, or enlarge it, as VGG's 7x7 pooling of a small input): a matmul of
  /// the {N*C, H*W} input by the {H*W, OH*OW} matrix of PyTorch's windows (cell i averages
  /// [floor(i*H/OH), ceil((i+1)*H/OH)) on each axis).
  void adaptive_pool_matmul(int id) {
    const Node& n = net_.node(id);
    const int in = n.inputs.at(0);
    const auto& in_s = shapes_[in];
    const auto& out_s = shapes_[id];
    const int64_t h = in_s[1], w = in_s[2], oh = out_s[1], ow = out_s[2];
    std::vector<float> m(static_cast<size_t>(h * w * oh * ow), 0.0f);
    const auto window = [](int64_t i, int64_t in_size, int64_t out_size) {
      return std::pair<int64_t, int64_t>{i * in_size / out_size,
                                         ((i + 1) * in_size + out_size - 1) / out_size};
    };
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        const auto [r0, r1] = window(i, h, oh);
        const auto [c0, c1] = window(j, w, ow);
        const float share = 1.0f / static_cast<float>((r1 - r0) * (c1 - c0));
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c) m[(r * w + c) * oh * ow + i * ow + j] = share;
      }
    const int64_t rows = batch_ * in_s[0];
    const memory plain = as(in, plain_desc(dims(in)), n.name);  // owned by its producing step
    const memory src(memory::desc({rows, h * w}, Dt::f32, Tag::ab), eng(), plain.get_data_handle());
    const memory::desc weights_md({h * w, oh * ow}, Dt::f32, Tag::ab);
    const memory weights = constant({h * w, oh * ow}, Tag::ab, m.data(), weights_md);
    // The step's arguments own the buffers (the values are views of them).
    const memory dst2d(memory::desc({rows, oh * ow}, Dt::f32, Tag::ab), eng());
    dnnl::matmul::desc desc(src.get_desc(), weights_md, dst2d.get_desc());
    dnnl::matmul::primitive_desc pd(desc, eng());
    add_step(n.name, dnnl::matmul(pd),
             {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst2d}});
    values_[id] = memory(plain_desc(dims(id)), eng(), dst2d.get_data_handle());
  }

  void flatten(int id) {
    const Node& n = net_.node(id);
    const int in = n.inputs.at(0);
    if (shapes_[in].size() == 1) return alias(id, in);
    const Dt type = value(in).get_desc().data_type();  // f32, or u8 codes
    const memory plain = as(in, with_type(plain_desc(dims(in)), type), n.name);
    // Row-major NCHW and row-major {N, C*H*W} are the same bytes.
    values_[id] = memory(with_type(plain_desc(dims(id)), type), eng(), plain.get_data_handle());
  }

  void fake_quant(int id) {
    const Node& n = net_.node(id);
    const memory src = value(n.inputs.at(0));
    memory dst(src.get_desc(), eng());
    const auto& a = n.attrs;
    if (!(a.q_scale > 0)) throw InputError("fake_quant node '" + n.name + "' has scale <= 0");
    const FakeQuantGrid grid(a);
    const size_t count = src.get_desc().get_size() / sizeof(float);
    Step s;
    s.node = n.name;
    s.custom = [=]() {
      fake_quantize(static_cast<const float*>(src.get_data_handle()),
                    static_cast<float*>(dst.get_data_handle()), count, grid);
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
                     "' is not supported; supported: " + join(supported));
  if (batch < 1) throw InputError("oneDNN engine: batch must be >= 1");
  impl_->precision = precision;
  Compiler(net, batch, *impl_).compile();
}

OneDnnEngine::~OneDnnEngine() = default;
OneDnnEngine::OneDnnEngine(OneDnnEngine&&) noexcept = default;
OneDnnEngine& OneDnnEngine::operator=(OneDnnEngine&&) noexcept = default;

namespace {

void execute(OneDnnEngine::Impl& im, Step& s) {
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

}  // namespace

std::vector<float> OneDnnEngine::run(const float* input) {
  Impl& im = *impl_;
  std::memcpy(im.input_mem.get_data_handle(), input, im.input_mem.get_desc().get_size());
  for (Step& s : im.steps) execute(im, s);
  im.strm.wait();
  const float* out = static_cast<const float*>(im.output_mem.get_data_handle());
  return std::vector<float>(out, out + im.output_mem.get_desc().get_size() / sizeof(float));
}

void OneDnnEngine::run_node(const std::string& node) {
  Impl& im = *impl_;
  bool found = false;
  for (Step& s : im.steps)
    if (s.node == node && !s.reorder) {
      execute(im, s);
      found = true;
    }
  if (!found) throw InputError("oneDNN engine: no step computes node '" + node + "'");
  im.strm.wait();
}

std::vector<OneDnnEngine::StepTime> OneDnnEngine::step_times(const float* input, int runs) {
  Impl& im = *impl_;
  run(input);  // warm
  std::vector<std::vector<double>> samples(im.steps.size());
  for (int r = 0; r < std::max(1, runs); ++r) {
    std::memcpy(im.input_mem.get_data_handle(), input, im.input_mem.get_desc().get_size());
    for (size_t i = 0; i < im.steps.size(); ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      execute(im, im.steps[i]);
      im.strm.wait();
      samples[i].push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  std::vector<StepTime> out;
  for (size_t i = 0; i < im.steps.size(); ++i) {
    auto& v = samples[i];
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    const Step& s = im.steps[i];
    out.push_back({s.node,
                   s.reorder  ? "reorder"
                   : s.custom ? "loop"
                              : "primitive",
                   v[v.size() / 2]});
  }
  return out;
}

const graph::Shape& OneDnnEngine::output_shape() const { return impl_->out_shape; }
const graph::Shape& OneDnnEngine::input_shape() const { return impl_->in_shape; }
const std::string& OneDnnEngine::precision() const { return impl_->precision; }
int OneDnnEngine::num_steps() const { return static_cast<int>(impl_->steps.size()); }

int64_t OneDnnEngine::int8_layers() const { return impl_->int8_layers; }
int64_t OneDnnEngine::bf16_layers() const { return impl_->bf16_layers; }
int64_t OneDnnEngine::fp32_layers() const { return impl_->fp32_layers; }

bool OneDnnEngine::exact_full_range_int8() { return cpu_has_vnni(); }

std::vector<std::string> OneDnnEngine::supported_precisions() { return {"fp32", "int8", "bf16"}; }

}  // namespace tightfit::targets
