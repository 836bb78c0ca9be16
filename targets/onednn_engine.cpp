// How a network becomes oneDNN primitives (one pass over the nodes in topological order):
//   - every node's output is a dnnl::memory whose desc is whatever its producer chose; aliases
//     (dropout, flatten of a vector) share their input's memory;
//   - conv2d: batch_norm folded into weights/bias when the conv is its only producer and the BN
//     its only consumer, then a relu/relu6/hardswish that is the only consumer becomes a post-op;
//     src/weights/dst use format_tag::any so oneDNN picks its fastest (blocked) layouts;
//   - a consumer that wants another layout gets one reorder per (value, layout), shared by all
//     consumers that want it; weights are reordered once, here;
//   - fake_quant is a small loop over the raw buffer: it is per-tensor and elementwise, so the
//     layout does not matter (padding lanes of blocked layouts are never read as values).
// run() executes the list in order; the output is reordered to plain row-major at the end.

#include "targets/onednn_engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <oneapi/dnnl/dnnl.hpp>
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
  std::string precision;
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
        for (int64_t k = 0; k < per_out; ++k) w.data[o * per_out + k] *= static_cast<float>(scale);
        bias[o] = static_cast<float>((bias[o] - mean[o]) * scale + beta[o]);
      }
      fused_[bn] = true;
      last = bn;
    }
    dnnl::post_ops po;
    fuse_activation(last, po);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);

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
    auto any = [](const memory::dims& d) { return memory::desc(d, Dt::f32, Tag::any); };
    dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                         dnnl::algorithm::convolution_direct, any(src_d),
                                         any(w_dims), memory::desc({out_ch}, Dt::f32, Tag::a),
                                         any(dst_d), strides, dilates, pad, pad);
    dnnl::convolution_forward::primitive_desc pd(desc, attr, eng());
    memory weights = constant(w_dims, w_tag, w.data.data(), pd.weights_desc());
    memory bias_mem = constant({out_ch}, Tag::a, bias.data(), pd.bias_desc());
    memory src = as(in, pd.src_desc(), n.name);
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
    int last = id;
    dnnl::post_ops po;
    fuse_activation(last, po);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    const memory::dims src_d = dims(in);
    if (src_d.size() != 2)
      throw InputError("oneDNN engine: linear node '" + n.name + "' needs a flattened input, got " +
                       graph::shape_str(shapes_[in]));
    dnnl::inner_product_forward::desc desc(
        dnnl::prop_kind::forward_inference, memory::desc(src_d, Dt::f32, Tag::any),
        memory::desc({out_f, in_f}, Dt::f32, Tag::any), memory::desc({out_f}, Dt::f32, Tag::a),
        memory::desc(dims(id), Dt::f32, Tag::any));
    dnnl::inner_product_forward::primitive_desc pd(desc, attr, eng());
    memory weights = constant({out_f, in_f}, Tag::oi, w.data.data(), pd.weights_desc());
    memory bias_mem = constant({out_f}, Tag::a, bias.data(), pd.bias_desc());
    memory src = as(in, pd.src_desc(), n.name);
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
                     "supported: fp32");
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

std::vector<std::string> OneDnnEngine::supported_precisions() { return {"fp32"}; }

}  // namespace tightfit::targets
