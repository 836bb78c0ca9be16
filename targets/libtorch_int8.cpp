// How a network becomes LibTorch quantized ops (one pass over the nodes in topological order):
//   - every node's value lives in a slot: a float tensor, or a quint8 tensor on a known grid
//     (value = (code - zero_point) * scale); a float consumer of a quantized value gets one
//     dequantize step, shared by all such consumers;
//   - conv2d: a batch_norm that is its only consumer is folded into its weights and bias; a ReLU
//     that is then the only consumer is fused (quantized::conv2d_relu / linear_relu, or an
//     in-place relu after an fp32 conv);
//   - int8 conv/linear (targets/int8.h, as in the oneDNN engine: input an unsigned fake_quant
//     with zero point 0; weights on a symmetric per-channel grid of <= 8 bits; without VNNI also
//     activations <= 127 or weight codes in [-64, 63], as u8 x s8 pairs saturate in int16
//     otherwise — LibTorch's onednn engine has the same limit as oneDNN itself): the weights become
//     a per-channel qint8 tensor holding the exact codes with scale weight_scale[o] * |bn_scale[o]|
//     (the BN sign goes into the codes), prepacked once. The output grid is that of the fake_quant
//     the output reaches through ReLU, ReLU6, max pooling, flatten or dropout: all commute with
//     rounding to a grid, so the int8 result is the fake-quant simulation's result. A layer with no
//     such fake_quant (a conv before a residual add) gets a min/max grid calibrated on the
//     simulation's values for a calibration batch, with headroom: one extra rounding step the
//     simulation does not have. LibTorch 1.13 has no quantized conv/linear with float output, so a
//     layer whose value is the network output (the classifier) runs in fp32: rounded logits would
//     flip near-ties;
//   - fake_quant: quantize (clamped to its range) when an int8 layer reads it; on a value already
//     on its grid only the clamp; read by fp32 layers only, rounded in float. These and the
//     dequantize steps are plain loops with fake_quantize's arithmetic (LibTorch's own run
//     scalar code here, slower than the convolutions they feed);
//   - everything else (add, average pooling, hardswish, concat, a standalone BN) runs in float
//     on dequantized values, channels-last like the quantized convs: simple, and measured fast
//     enough (on resnet20, batch 1, the int8 convs take ~80% of the time, this glue ~10%).

#include "targets/libtorch_int8.h"

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "core/errors.h"
#include "graph/executor.h"
#include "models/torchscript.h"
#include "targets/int8.h"
#include "targets/lowering.h"

namespace tightfit::targets {

namespace {

using graph::Node;
using graph::OpKind;
using ConvPacked = c10::intrusive_ptr<ConvPackedParamsBase<2>>;
using LinearPacked = c10::intrusive_ptr<LinearPackedParamsBase>;
using IntList = torch::List<int64_t>;

/// Images in the default (random) calibration batch.
constexpr int64_t kDefaultCalibrationBatch = 4;
/// Calibrated grids span this multiple of the calibration batch's range: other inputs then rarely
/// clip, for a 25% coarser step (clipping was the larger error on resnet8 with a 256-image batch).
constexpr double kCalibrationHeadroom = 1.25;

/// A quint8 grid: value = (code - zero_point) * scale, code in [0, 255]. Any zero point: unlike
/// the oneDNN engine, which keeps only u8 inputs (zero point 0) in 8 bits, this model keeps every
/// int8 layer's output quantized, on a fake_quant's grid or a calibrated one.
struct Grid {
  double scale = 1.0;
  int64_t zero_point = 0;
  bool operator==(const Grid& o) const { return scale == o.scale && zero_point == o.zero_point; }
};

/// The quint8 grid of fake_quant attributes `a` (its levels shifted to start at code 0), or
/// nothing when its levels do not fit in 8 bits.
std::optional<Grid> fake_quant_grid(const graph::Attrs& a) {
  if (!(a.q_scale > 0) || a.q_max < a.q_min || a.q_max - a.q_min > kU8CodeMax ||
      a.q_zero_point < a.q_min || a.q_zero_point > a.q_max)
    return std::nullopt;
  return Grid{a.q_scale, a.q_zero_point - a.q_min};
}

/// LibTorch's quantized operators, looked up once in the dispatcher.
struct QuantizedOps {
  c10::TypedOperatorHandle<ConvPacked(at::Tensor, c10::optional<at::Tensor>, IntList, IntList,
                                      IntList, int64_t)>
      conv_prepack;
  c10::TypedOperatorHandle<at::Tensor(at::Tensor, const ConvPacked&, double, int64_t)> conv;
  c10::TypedOperatorHandle<at::Tensor(at::Tensor, const ConvPacked&, double, int64_t)> conv_relu;
  c10::TypedOperatorHandle<LinearPacked(at::Tensor, c10::optional<at::Tensor>)> linear_prepack;
  c10::TypedOperatorHandle<at::Tensor(at::Tensor, const LinearPacked&, double, int64_t)> linear;
  c10::TypedOperatorHandle<at::Tensor(at::Tensor, const LinearPacked&, double, int64_t)>
      linear_relu;
};

const QuantizedOps& quantized_ops() {
  static const QuantizedOps ops = [] {
    auto& d = c10::Dispatcher::singleton();
    using ConvFn = at::Tensor(at::Tensor, const ConvPacked&, double, int64_t);
    using LinearFn = at::Tensor(at::Tensor, const LinearPacked&, double, int64_t);
    return QuantizedOps{d.findSchemaOrThrow("quantized::conv2d_prepack", "")
                            .typed<ConvPacked(at::Tensor, c10::optional<at::Tensor>, IntList,
                                              IntList, IntList, int64_t)>(),
                        d.findSchemaOrThrow("quantized::conv2d", "new").typed<ConvFn>(),
                        d.findSchemaOrThrow("quantized::conv2d_relu", "new").typed<ConvFn>(),
                        d.findSchemaOrThrow("quantized::linear_prepack", "")
                            .typed<LinearPacked(at::Tensor, c10::optional<at::Tensor>)>(),
                        d.findSchemaOrThrow("quantized::linear", "").typed<LinearFn>(),
                        d.findSchemaOrThrow("quantized::linear_relu", "").typed<LinearFn>()};
  }();
  return ops;
}

/// A fake_quant's arithmetic (targets/int8.h) with its levels stored as quint8 codes,
/// level + (zp - q_min).
struct FakeQuant : FakeQuantGrid {
  uint8_t code_offset = 0;  ///< quint8 code of level 0 (the grid's zero point)

  explicit FakeQuant(const graph::Attrs& a)
      : FakeQuantGrid(a),
        code_offset(
            static_cast<uint8_t>(std::clamp<int64_t>(a.q_zero_point - a.q_min, 0, kU8CodeMax))) {}
};

// Elementwise loops over a tensor's buffer in its own (dense) memory format. LibTorch 1.13 as
// Debian builds it quantizes and dequantizes with scalar loops (~10 and ~3 ns per value here):
// slower than the int8 convolutions they feed at batch 1.
constexpr int64_t kElementwiseGrain = 32768;  ///< values per parallel task

/// Quint8 codes of float `x` per `fq` (same sizes and memory format).
at::Tensor to_codes(const at::Tensor& x, const FakeQuant& fq, double scale, int64_t zero_point) {
  const auto format = x.suggest_memory_format();
  const at::Tensor src = x.contiguous(format);
  at::Tensor q = at::_empty_affine_quantized(src.sizes(), at::device(at::kCPU).dtype(at::kQUInt8),
                                             scale, zero_point, format);
  const float* in = src.data_ptr<float>();
  uint8_t* out = reinterpret_cast<uint8_t*>(q.data_ptr<c10::quint8>());
  const float offset = fq.code_offset;
  at::parallel_for(0, src.numel(), kElementwiseGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = static_cast<uint8_t>(fq.level(in[i]) + offset);
  });
  return q;
}

/// Float values of quint8 `q`: (code - zero_point) * scale in float, as fake_quantize computes
/// them (LibTorch's dequantize multiplies in double).
at::Tensor to_floats(const at::Tensor& q) {
  const auto format = q.suggest_memory_format();
  const at::Tensor src = q.contiguous(format);
  at::Tensor x = at::empty(src.sizes(), at::TensorOptions(at::kFloat).memory_format(format));
  const uint8_t* in = reinterpret_cast<const uint8_t*>(src.data_ptr<c10::quint8>());
  float* out = x.data_ptr<float>();
  const float scale = static_cast<float>(src.q_scale());
  const float zero_point = static_cast<float>(src.q_zero_point());
  at::parallel_for(0, src.numel(), kElementwiseGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = (static_cast<float>(in[i]) - zero_point) * scale;
  });
  return x;
}

/// Float `x` rounded to the grid of `fq` (fake_quant with float output).
at::Tensor round_to_grid(const at::Tensor& x, const FakeQuant& fq) {
  const auto format = x.suggest_memory_format();
  const at::Tensor src = x.contiguous(format);
  at::Tensor y = at::empty(src.sizes(), at::TensorOptions(at::kFloat).memory_format(format));
  const float* in = src.data_ptr<float>();
  float* out = y.data_ptr<float>();
  at::parallel_for(0, src.numel(), kElementwiseGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = fq.level(in[i]) * fq.scale;
  });
  return y;
}

at::Tensor float_tensor(const std::vector<float>& data, const graph::Shape& shape) {
  return at::from_blob(const_cast<float*>(data.data()), shape, at::kFloat).clone();
}

using Slots = std::vector<at::Tensor>;

/// One entry of the execution list.
struct Step {
  std::string node;  ///< for error messages
  std::function<void(Slots&)> run;
};

/// Sets the quantized engine for its lifetime (prepacking picks the engine's weight format).
class QEngineGuard {
 public:
  explicit QEngineGuard(at::QEngine engine) : previous_(at::globalContext().qEngine()) {
    at::globalContext().setQEngine(engine);
  }
  ~QEngineGuard() { at::globalContext().setQEngine(previous_); }
  QEngineGuard(const QEngineGuard&) = delete;
  QEngineGuard& operator=(const QEngineGuard&) = delete;

 private:
  at::QEngine previous_;
};

}  // namespace

/// A conv/linear layer as this model runs it, for the TorchScript export: int8 (packed weights
/// and grids) or fp32 (BN-folded float weights, channels-last output), so that the export
/// computes what the model computes, float rounding included.
struct LayerPart {
  std::vector<int> nodes;  ///< the conv/linear, then its folded BN and fused ReLU
  int last = -1;           ///< the node whose value the layer computes
  int input = -1;          ///< int8: the fake_quant it reads; fp32: its input node
  bool conv = true, relu = false;
  c10::IValue packed;       ///< int8: ConvPacked or LinearPacked; fp32: none
  Grid in, out;             ///< int8: input and output grids
  at::Tensor weight, bias;  ///< fp32: folded
  std::vector<int64_t> stride, padding, dilation;
  int64_t groups = 1;
};

struct LibTorchInt8Model::Impl {
  std::vector<Step> steps;
  std::vector<LayerPart> layer_parts;
  int num_nodes = 0;
  int num_slots = 0;
  int output_slot = -1;
  graph::Shape in_shape;  ///< per sample
  std::string precision;  ///< what runs: fp32, int8 or int8+fp32
  int64_t int8_layers = 0, fp32_layers = 0;
};

namespace {

class Compiler {
 public:
  Compiler(const graph::Network& net, const at::Tensor& calibration, LibTorchInt8Model::Impl& impl)
      : net_(net), calibration_(calibration), impl_(impl) {}

  void compile() {
    shapes_ = graph::infer_shapes(net_);
    impl_.in_shape = net_.input_shape();
    const int n = net_.size();
    impl_.num_nodes = n;
    users_.assign(n, {});
    for (int i = 0; i < n; ++i)
      for (int in : net_.node(i).inputs) users_[in].push_back(i);
    fused_.assign(n, false);
    slot_.assign(n, -1);
    float_slot_.assign(n, -1);
    grid_.assign(n, std::nullopt);
    int8_ = plan_int8_layers(net_, cpu_has_vnni());
    for (int i = 0; i < n; ++i)
      if (int8_[i] && !runs_in_int8_here(i)) int8_[i].reset();
    for (int i = 0; i < n; ++i) {
      if (fused_[i]) continue;
      compile_node(i);
    }
    const int out = net_.output();
    TIGHTFIT_CHECK(slot_[out] >= 0, "the output node has no value");
    impl_.output_slot = float_slot(out);
    if (impl_.int8_layers == 0)
      impl_.precision = "fp32";
    else
      impl_.precision = impl_.fp32_layers == 0 ? "int8" : "int8+fp32";
  }

 private:
  const graph::Network& net_;
  at::Tensor calibration_;
  LibTorchInt8Model::Impl& impl_;
  std::vector<graph::Shape> shapes_;
  std::vector<std::vector<int>> users_;
  std::vector<bool> fused_;                     ///< compiled as part of an earlier node
  std::vector<int> slot_;                       ///< node -> slot holding its value
  std::vector<int> float_slot_;                 ///< quantized node -> slot of its dequantized value
  std::vector<std::optional<Grid>> grid_;       ///< node whose value is quantized -> its grid
  std::vector<std::optional<Int8Layer>> int8_;  ///< conv/linear nodes that run in int8
  std::vector<at::Tensor> simulated_;           ///< fake-quant simulation's values on calibration_

  /// False when conv/linear `id`, which plan_int8_layers lets run in int8, must run in fp32 here:
  /// its value is the network output, which has no grid to land on (LibTorch 1.13's quantized
  /// conv/linear return quint8 only; the oneDNN engine's int8 primitives write f32, so there it
  /// runs in int8). A calibrated grid would round the logits the simulation keeps exact (flipping
  /// near-ties), and a float classifier costs next to nothing.
  bool runs_in_int8_here(int id) const { return !reaches_output(fusion(id).last); }

  /// A conv/linear with what folds into it: the BN that is a conv's only consumer, then the ReLU
  /// that is the only consumer of that; `last` is the node whose value the fused layer computes.
  struct Fusion {
    int bn = -1, relu = -1, last = -1;
  };

  Fusion fusion(int id) const {
    Fusion f;
    f.last = id;
    if (net_.node(id).op == OpKind::kConv2d) {
      const int u = sole_user(id);
      if (u >= 0 && net_.node(u).op == OpKind::kBatchNorm) f.bn = f.last = u;
    }
    const int u = sole_user(f.last);
    if (u >= 0 && net_.node(u).op == OpKind::kReLU) f.relu = f.last = u;
    return f;
  }

  /// True when `id`'s value is the network output, unchanged or through flatten and dropout.
  bool reaches_output(int id) const {
    for (int cur = id; cur >= 0; cur = sole_user(cur)) {
      if (cur == net_.output()) return true;
      const OpKind op = net_.node(cur).op;
      if (cur != id && op != OpKind::kFlatten && op != OpKind::kDropout) return false;
    }
    return false;
  }

  /// The consumer of `id` when it has exactly one and is not the network output itself.
  int sole_user(int id) const {
    if (id == net_.output() || users_[id].size() != 1) return -1;
    return users_[id][0];
  }

  int new_slot() { return impl_.num_slots++; }

  void add_step(int id, std::function<void(Slots&)> run) {
    impl_.steps.push_back(Step{net_.node(id).name, std::move(run)});
  }

  /// Slot of node `id`'s value as a float tensor (one dequantize step when it is quantized).
  int float_slot(int id) {
    TIGHTFIT_CHECK(slot_[id] >= 0, "node " << net_.node(id).name << " has no value");
    if (!grid_[id]) return slot_[id];
    if (float_slot_[id] < 0) {
      const int src = slot_[id], dst = new_slot();
      add_step(id, [src, dst](Slots& v) { v[dst] = to_floats(v[src]); });
      float_slot_[id] = dst;
    }
    return float_slot_[id];
  }

  /// `id` takes the value of `of` unchanged.
  void alias(int id, int of) {
    slot_[id] = slot_[of];
    float_slot_[id] = float_slot_[of];
    grid_[id] = grid_[of];
  }

  /// A one-input op: on the quantized value when `on_quantized` and the input is quantized (the
  /// grid stays), otherwise on floats.
  void unary(int id, std::function<at::Tensor(const at::Tensor&)> f, bool on_quantized) {
    const int in = net_.node(id).inputs.at(0);
    const bool quantized = on_quantized && grid_[in].has_value();
    const int src = quantized ? slot_[in] : float_slot(in);
    const int dst = new_slot();
    add_step(id, [src, dst, f = std::move(f)](Slots& v) { v[dst] = f(v[src]); });
    slot_[id] = dst;
    if (quantized) grid_[id] = grid_[in];
  }

  void compile_node(int id) {
    const Node& n = net_.node(id);
    const auto& a = n.attrs;
    switch (n.op) {
      case OpKind::kInput:
        slot_[id] = new_slot();
        TIGHTFIT_CHECK(slot_[id] == 0, "the input is not slot 0");
        return;
      case OpKind::kConv2d:
      case OpKind::kLinear:
        return weighted(id);
      case OpKind::kFakeQuant:
        return fake_quant(id);
      case OpKind::kBatchNorm: {
        const at::Tensor gamma = float_tensor(param(n, "weight").data, {-1}),
                         beta = float_tensor(param(n, "bias").data, {-1}),
                         mean = float_tensor(param(n, "running_mean").data, {-1}),
                         var = float_tensor(param(n, "running_var").data, {-1});
        const double eps = a.eps;
        return unary(
            id,
            [=](const at::Tensor& x) {
              return at::batch_norm(x, gamma, beta, mean, var, false, 0.0, eps, false);
            },
            false);
      }
      case OpKind::kReLU:
      case OpKind::kReLU6:
      case OpKind::kHardswish:
      case OpKind::kHardsigmoid:
      case OpKind::kSigmoid:
      case OpKind::kSiLU:
      case OpKind::kGELU:
      case OpKind::kTanh: {
        // relu and clamp commute with rounding to a grid: exact on quantized values too.
        const OpKind op = n.op;
        const bool on_quantized = op == OpKind::kReLU || op == OpKind::kReLU6;
        return unary(
            id, [op](const at::Tensor& x) { return graph::activation(op, x); }, on_quantized);
      }
      case OpKind::kSlice: {
        const int64_t begin = a.begin, end = a.end;
        return unary(
            id, [=](const at::Tensor& x) { return x.slice(1, begin, end).contiguous(); }, false);
      }
      case OpKind::kChannelShuffle: {
        const int64_t groups = a.groups;
        return unary(
            id, [groups](const at::Tensor& x) { return graph::channel_shuffle(x, groups); }, false);
      }
      case OpKind::kMaxPool: {
        const std::vector<int64_t> k{a.kernel[0], a.kernel[1]}, s{a.stride[0], a.stride[1]},
            p{a.padding[0], a.padding[1]};
        const bool ceil = a.ceil_mode;
        return unary(
            id,
            [=](const at::Tensor& x) {
              return at::max_pool2d(x, k, s, p, {1, 1}, ceil);
            },
            true);
      }
      case OpKind::kAvgPool: {
        const std::vector<int64_t> k{a.kernel[0], a.kernel[1]}, s{a.stride[0], a.stride[1]},
            p{a.padding[0], a.padding[1]};
        const bool ceil = a.ceil_mode;
        return unary(
            id, [=](const at::Tensor& x) { return at::avg_pool2d(x, k, s, p, ceil); }, false);
      }
      case OpKind::kAdaptiveAvgPool: {
        const std::vector<int64_t> size{a.output_size[0], a.output_size[1]};
        return unary(
            id, [=](const at::Tensor& x) { return at::adaptive_avg_pool2d(x, size); }, false);
      }
      case OpKind::kFlatten:
        if (shapes_[n.inputs.at(0)].size() == 1) return alias(id, n.inputs.at(0));
        return unary(
            id, [](const at::Tensor& x) { return x.flatten(1); }, true);
      case OpKind::kDropout:
        return alias(id, n.inputs.at(0));
      case OpKind::kAdd: {
        if (n.inputs.size() < 2) throw InputError("add node '" + n.name + "' needs 2+ inputs");
        std::vector<int> src;
        for (int in : n.inputs) src.push_back(float_slot(in));
        const int dst = new_slot();
        add_step(id, [src, dst](Slots& v) {
          at::Tensor y = v[src[0]] + v[src[1]];
          for (size_t k = 2; k < src.size(); ++k) y.add_(v[src[k]]);
          v[dst] = y;
        });
        slot_[id] = dst;
        return;
      }
      case OpKind::kMul: {
        const int x = float_slot(n.inputs.at(0)), gate = float_slot(n.inputs.at(1));
        const int dst = new_slot();
        add_step(id, [x, gate, dst](Slots& v) { v[dst] = v[x] * v[gate]; });
        slot_[id] = dst;
        return;
      }
      case OpKind::kConcat: {
        std::vector<int> src;
        for (int in : n.inputs) src.push_back(float_slot(in));
        const int dst = new_slot();
        add_step(id, [src, dst](Slots& v) {
          std::vector<at::Tensor> parts;
          for (int s : src) parts.push_back(v[s]);
          v[dst] = at::cat(parts, 1);
        });
        slot_[id] = dst;
        return;
      }
    }
    throw InputError("LibTorch int8: node '" + n.name + "' has an unsupported op");
  }

  /// The simulation's values of every node on the calibration batch (computed once).
  const std::vector<at::Tensor>& simulated() {
    if (simulated_.empty()) {
      torch::NoGradGuard no_grad;
      if (!calibration_.defined()) {
        std::vector<int64_t> shape{kDefaultCalibrationBatch};
        for (int64_t d : net_.input_shape()) shape.push_back(d);
        calibration_ = at::randn(shape, at::detail::createCPUGenerator(0));
      }
      graph::Executor ex(net_);
      ex.train(false);
      simulated_ = ex.forward_all(calibration_);
    }
    return simulated_;
  }

  /// Grid for the output of an int8 layer whose value (after folded BN and fused ReLU) is node
  /// `last`: the grid of the fake_quant it reaches through ops that commute with rounding,
  /// otherwise a min/max grid from the calibration batch.
  Grid output_grid(int last) {
    for (int cur = last, u = sole_user(cur); u >= 0; cur = u, u = sole_user(cur)) {
      const Node& node = net_.node(u);
      if (node.op == OpKind::kFakeQuant) {
        if (auto g = fake_quant_grid(node.attrs)) return *g;
        break;
      }
      if (node.op != OpKind::kMaxPool && node.op != OpKind::kFlatten &&
          node.op != OpKind::kDropout && node.op != OpKind::kReLU && node.op != OpKind::kReLU6)
        break;
    }
    const at::Tensor& v = simulated().at(last);
    const double lo = kCalibrationHeadroom * std::min(0.0, v.min().item<double>());
    const double hi = kCalibrationHeadroom * std::max(0.0, v.max().item<double>());
    Grid g;
    g.scale = (hi - lo) / static_cast<double>(kU8CodeMax);
    if (!(g.scale > 0)) g.scale = 1.0;  // all zeros
    g.zero_point = std::clamp<int64_t>(std::llround(-lo / g.scale), 0, kU8CodeMax);
    return g;
  }

  void weighted(int id) {
    const Node& n = net_.node(id);
    const auto& a = n.attrs;
    const bool is_conv = n.op == OpKind::kConv2d;
    const int in = n.inputs.at(0);
    if (!is_conv && shapes_[in].size() != 1)
      throw InputError("LibTorch int8: linear node '" + n.name + "' needs a flattened input, got " +
                       graph::shape_str(shapes_[in]));
    graph::Tensor w = param(n, "weight");
    const int64_t out_ch = w.shape.at(0);
    const int64_t per_out = w.numel() / out_ch;
    std::vector<double> bias(out_ch, 0.0);
    if (n.params.count("bias")) {
      const auto& b = param(n, "bias").data;
      std::copy(b.begin(), b.end(), bias.begin());
    }

    std::vector<double> mult(out_ch, 1.0);  // per output channel, folded BN
    const Fusion f = fusion(id);
    const int last = f.last;
    const bool relu = f.relu >= 0;
    if (relu) fused_[f.relu] = true;
    if (f.bn >= 0) {
      fold_batch_norm(net_.node(f.bn), mult, bias);
      fused_[f.bn] = true;
    }
    std::vector<float> bias_f(bias.begin(), bias.end());
    const at::Tensor bias_t = float_tensor(bias_f, {out_ch});
    const IntList stride({a.stride[0], a.stride[1]}), padding({a.padding[0], a.padding[1]}),
        dilation({a.dilation[0], a.dilation[1]});
    const int dst = new_slot();
    slot_[last] = dst;

    if (const auto& plan = int8_[id]) {
      const QuantizedOps& ops = quantized_ops();
      // Exact codes with per-channel scales weight_scale[o] * |bn_scale[o]|.
      const Int8Weights folded = with_multipliers(*plan, mult);
      at::Tensor codes = at::empty(w.shape, at::kChar);
      at::Tensor scales = at::empty({out_ch}, at::kDouble);
      std::copy(folded.codes.begin(), folded.codes.end(), codes.data_ptr<int8_t>());
      std::copy(folded.scales.begin(), folded.scales.end(), scales.data_ptr<double>());
      const at::Tensor qweight = at::_make_per_channel_quantized_tensor(
          codes, scales, at::zeros({out_ch}, at::kLong), /*axis=*/0);
      const Grid g = output_grid(last);
      const int src = slot_[plan->fq];
      TIGHTFIT_CHECK(src >= 0 && grid_[plan->fq], "int8 layer " << n.name << " reads no codes");
      LayerPart part = layer_part(id, f);
      part.input = plan->fq;
      part.in = *grid_[plan->fq];
      part.out = g;
      if (is_conv) {
        const ConvPacked packed =
            ops.conv_prepack.call(qweight, bias_t, stride, padding, dilation, a.groups);
        const auto& op = relu ? ops.conv_relu : ops.conv;
        add_step(id, [=](Slots& v) { v[dst] = op.call(v[src], packed, g.scale, g.zero_point); });
        part.packed = packed;
      } else {
        const LinearPacked packed = ops.linear_prepack.call(qweight, bias_t);
        const auto& op = relu ? ops.linear_relu : ops.linear;
        add_step(id, [=](Slots& v) { v[dst] = op.call(v[src], packed, g.scale, g.zero_point); });
        part.packed = packed;
      }
      impl_.layer_parts.push_back(std::move(part));
      grid_[last] = g;
      ++impl_.int8_layers;
      return;
    }

    for (int64_t o = 0; o < out_ch; ++o)
      for (int64_t k = 0; k < per_out; ++k)
        w.data[o * per_out + k] = static_cast<float>(w.data[o * per_out + k] * mult[o]);
    const at::Tensor weight = float_tensor(w.data, w.shape);
    const int src = float_slot(in);
    const std::vector<int64_t> st = stride.vec(), pad = padding.vec(), dil = dilation.vec();
    const int64_t groups = a.groups;
    LayerPart part = layer_part(id, f);
    part.input = in;
    part.weight = weight;
    part.bias = bias_t;
    part.stride = st;
    part.padding = pad;
    part.dilation = dil;
    part.groups = groups;
    impl_.layer_parts.push_back(std::move(part));
    if (is_conv)
      add_step(id, [=](Slots& v) {
        at::Tensor y = at::conv2d(v[src], weight, bias_t, st, pad, dil, groups);
        if (relu) at::relu_(y);
        // Channels-last, as the quantized convs read and write: LibTorch's float max pooling is
        // ~10x faster on it at batch 1, and later adds meet operands in one layout.
        v[dst] = y.contiguous(at::MemoryFormat::ChannelsLast);
      });
    else
      add_step(id, [=](Slots& v) {
        at::Tensor y = at::linear(v[src], weight, bias_t);
        v[dst] = relu ? at::relu_(y) : y;
      });
    ++impl_.fp32_layers;
  }

  /// The export's record of layer `id` with what fuses into it.
  LayerPart layer_part(int id, const Fusion& f) const {
    LayerPart part;
    part.nodes = {id};
    if (f.bn >= 0) part.nodes.push_back(f.bn);
    if (f.relu >= 0) part.nodes.push_back(f.relu);
    part.last = f.last;
    part.conv = net_.node(id).op == OpKind::kConv2d;
    part.relu = f.relu >= 0;
    return part;
  }

  void fake_quant(int id) {
    const Node& n = net_.node(id);
    const auto& a = n.attrs;
    const int in = n.inputs.at(0);
    if (!(a.q_scale > 0)) throw InputError("fake_quant node '" + n.name + "' has scale <= 0");
    const auto g = fake_quant_grid(a);
    const bool int8_reader = std::any_of(users_[id].begin(), users_[id].end(), [&](int u) {
      return int8_[u].has_value() && int8_[u]->fq == id;
    });
    const FakeQuant fq(a);
    const int dst = new_slot();
    slot_[id] = dst;
    if (g && grid_[in] == g) {
      // Already rounded to this grid by the producing int8 layer: only the range is left.
      const int src = slot_[in];
      const double lo = static_cast<double>(a.q_min - a.q_zero_point) * a.q_scale;
      const double hi = static_cast<double>(a.q_max - a.q_zero_point) * a.q_scale;
      if (a.q_max - a.q_min < kU8CodeMax)
        add_step(id, [=](Slots& v) { v[dst] = at::clamp(v[src], lo, hi); });
      else
        add_step(id, [=](Slots& v) { v[dst] = v[src]; });
      grid_[id] = g;
    } else if (g && int8_reader) {
      const int src = float_slot(in);
      add_step(id, [=](Slots& v) { v[dst] = to_codes(v[src], fq, g->scale, g->zero_point); });
      grid_[id] = g;
    } else {
      const int src = float_slot(in);
      add_step(id, [=](Slots& v) { v[dst] = round_to_grid(v[src], fq); });
    }
  }
};

}  // namespace

LibTorchInt8Model::LibTorchInt8Model(const graph::Network& net, const at::Tensor& calibration)
    : impl_(std::make_unique<Impl>()) {
  if (!supported())
    throw InputError(
        "LibTorch int8: this LibTorch has no onednn quantized engine; use precision fp32 or the "
        "cpu-onednn target");
  QEngineGuard engine(at::QEngine::ONEDNN);
  Compiler(net, calibration, *impl_).compile();
}

LibTorchInt8Model::~LibTorchInt8Model() = default;
LibTorchInt8Model::LibTorchInt8Model(LibTorchInt8Model&&) noexcept = default;
LibTorchInt8Model& LibTorchInt8Model::operator=(LibTorchInt8Model&&) noexcept = default;

at::Tensor LibTorchInt8Model::forward(const at::Tensor& x) {
  const Impl& im = *impl_;
  std::vector<int64_t> expected{x.dim() > 0 ? x.size(0) : 0};
  expected.insert(expected.end(), im.in_shape.begin(), im.in_shape.end());
  if (x.sizes().vec() != expected || x.scalar_type() != at::kFloat)
    throw InputError("LibTorch int8: input of shape " + graph::shape_str(x.sizes().vec()) +
                     " given; the network takes float {N} + " + graph::shape_str(im.in_shape));
  at::Tensor out;
  {
    c10::InferenceMode inference;
    Slots v(static_cast<size_t>(im.num_slots));
    v[0] = x.contiguous();
    for (const Step& s : im.steps) {
      try {
        s.run(v);
      } catch (const c10::Error& e) {
        throw InputError(std::string("LibTorch int8: ") + e.what_without_backtrace() +
                         " at node '" + s.node + "'");
      }
    }
    out = v[im.output_slot];
  }
  return out.contiguous().clone();  // a normal tensor, not an inference one
}

void LibTorchInt8Model::export_torchscript(const graph::Network& net,
                                           const std::string& path) const {
  TIGHTFIT_CHECK(net.size() == impl_->num_nodes, "export of another network than the compiled one");
  // The dtype as its ScalarType number: the generated source has no `torch.quint8` constant.
  const std::string quint8 = std::to_string(static_cast<int>(c10::ScalarType::QUInt8));
  const auto ints = [](const std::vector<int64_t>& v) {
    std::string out;
    for (int64_t x : v) out += (out.empty() ? "" : ", ") + std::to_string(x);
    return "[" + out + "]";
  };
  const auto name = [&](const LayerPart& p, const char* key) {
    return models::export_name(net.node(p.nodes.front()), key);
  };
  models::ExportHooks hooks;
  for (const LayerPart& p : impl_->layer_parts) {
    models::ExportPart part;
    part.nodes = p.nodes;
    part.last = p.last;
    const std::string in = "v" + std::to_string(p.input);
    if (!p.packed.isNone()) {
      const std::string op = std::string(p.conv ? "conv2d" : "linear") + (p.relu ? "_relu" : "");
      part.expression = "quantized." + op + "(torch.quantize_per_tensor(" + in + ", " +
                        models::export_float(p.in.scale) + ", " + std::to_string(p.in.zero_point) +
                        ", " + quint8 + "), self." + name(p, "packed") + ", " +
                        models::export_float(p.out.scale) + ", " +
                        std::to_string(p.out.zero_point) + ").dequantize()";
    } else {
      const std::string w = "self." + name(p, "folded_weight"),
                        b = "self." + name(p, "folded_bias");
      std::string e = p.conv ? "torch.conv2d(" + in + ", " + w + ", " + b + ", " + ints(p.stride) +
                                   ", " + ints(p.padding) + ", " + ints(p.dilation) + ", " +
                                   std::to_string(p.groups) + ")"
                             : "torch.linear(" + in + ", " + w + ", " + b + ")";
      if (p.relu) e = "torch.relu(" + e + ")";
      // The model keeps conv outputs channels-last (MemoryFormat 2): later float kernels then
      // sum in the same order here.
      if (p.conv)
        e += ".contiguous(memory_format=" +
             std::to_string(static_cast<int>(c10::MemoryFormat::ChannelsLast)) + ")";
      part.expression = e;
    }
    hooks.parts.push_back(std::move(part));
  }
  hooks.attributes = [&](torch::jit::Module& module) {
    for (const LayerPart& p : impl_->layer_parts) {
      if (p.packed.isNone()) {
        module.register_parameter(name(p, "folded_weight"), p.weight, false);
        module.register_parameter(name(p, "folded_bias"), p.bias, false);
        continue;
      }
      const auto type =
          p.conv ? c10::getCustomClassType<ConvPacked>() : c10::getCustomClassType<LinearPacked>();
      module.register_attribute(name(p, "packed"), type, p.packed);
    }
  };
  models::export_torchscript(net, path, hooks);
}

const std::string& LibTorchInt8Model::precision() const { return impl_->precision; }
int64_t LibTorchInt8Model::int8_layers() const { return impl_->int8_layers; }
int64_t LibTorchInt8Model::fp32_layers() const { return impl_->fp32_layers; }

bool LibTorchInt8Model::supported() {
  const auto& engines = at::globalContext().supportedQEngines();
  return std::find(engines.begin(), engines.end(), at::QEngine::ONEDNN) != engines.end();
}

}  // namespace tightfit::targets
