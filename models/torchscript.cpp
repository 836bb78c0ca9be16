#include "models/torchscript.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/script.h>

#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <unordered_map>

#include "core/errors.h"
#include "core/files.h"
#include "core/json.h"

namespace tightfit::models {

namespace {

using graph::Attrs;
using graph::Network;
using graph::Node;
using graph::OpKind;
using torch::jit::Value;

/// Input size assumed when none is given: the ImageNet models' 224 x 224.
constexpr int64_t kDefaultImageSize = 224;

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

/// Why `path` did not load as TorchScript, as one line a user can act on.
[[noreturn]] void not_torchscript(const std::string& path, const std::string& why) {
  std::vector<std::string> records;
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    records = reader.getAllRecords();
  } catch (const std::exception&) {
  }
  bool code = false;
  for (const auto& r : records) code = code || r.rfind("code/", 0) == 0;
  if (!records.empty() && !code)
    throw InputError(
        "'" + path +
        "' holds tensors or Python objects saved with torch.save (a state_dict checkpoint?), "
        "not a TorchScript module; in Python, save the model itself with "
        "torch.jit.trace(model.eval(), example_input).save(path) (or torch.jit.script(model))");
  throw InputError("cannot load TorchScript file '" + path + "': " + first_line(why) +
                   "; save it with torch.jit.trace(model, x).save(path) from PyTorch 1.13 or "
                   "older");
}

/// The per-sample input shape: the given one, else the first convolution's channels at 224 x 224.
graph::Shape input_shape_of(const torch::jit::Module& m, graph::Shape given,
                            const std::string& path) {
  if (!given.empty()) {
    if (given.size() != 3)
      throw InputError("input shape " + graph::shape_str(given) + " for '" + path +
                       "' must be C,H,W (e.g. 3,224,224)");
    return given;
  }
  for (const auto& p : m.named_parameters(/*recurse=*/true))
    if (p.value.dim() == 4) return {p.value.size(1), kDefaultImageSize, kDefaultImageSize};
  throw InputError("'" + path +
                   "' has no convolution to take the input channels from; give the input shape "
                   "(e.g. --input-shape 3,224,224)");
}

graph::Tensor to_ir(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kFloat).contiguous();
  graph::Tensor out;
  out.shape = c.sizes().vec();
  out.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return out;
}

/// Translates the traced graph node by node. Activations map to IR node ids; module attributes
/// (prim::GetAttr chains from `self`) map to their paths and are read from the module.
class Translator {
 public:
  Translator(const torch::jit::Module& module, graph::Shape input_shape, std::string path)
      : module_(module), net_(std::move(input_shape)), path_(std::move(path)) {}

  Network run(torch::jit::Graph& g) {
    // Input 0 is the module itself, input 1 the image batch.
    attr_path_[g.inputs().at(0)] = "";
    node_of_[g.inputs().at(1)] = 0;
    for (torch::jit::Node* n : g.nodes()) translate(n);
    if (!unsupported_.empty()) {
      std::string list;
      for (const auto& [kind, seen] : unsupported_)
        list += (list.empty() ? "" : ", ") + kind + " x" + std::to_string(seen.count) +
                (seen.where.empty() ? "" : " (e.g. in " + seen.where + ")");
      throw InputError("'" + path_ + "' uses ops tightfit cannot import: " + list +
                       "; supported: convolution, linear/addmm/matmul with a weight, batch_norm, "
                       "relu, relu6/hardtanh(0, 6), hardswish, hardsigmoid, sigmoid, silu, gelu, "
                       "tanh, add, mul, cat, chunk/split/slice of channels, channel shuffle, "
                       "max/avg/adaptive-avg pooling, flatten/view/reshape, mean over H and W, "
                       "dropout");
    }
    const Value* out = g.outputs().at(0);
    const auto it = node_of_.find(out);
    if (it == node_of_.end())
      throw InputError("'" + path_ +
                       "': the module's output is not a single tensor computed "
                       "from its input; return one tensor of logits from forward()");
    net_.set_output(it->second);
    graph::infer_shapes(net_);
    return std::move(net_);
  }

 private:
  struct Unsupported {
    int count = 0;
    std::string where;
  };

  void translate(torch::jit::Node* n) {
    const std::string kind = n->kind().toQualString();
    if (kind == "prim::GetAttr") {
      const auto it = attr_path_.find(n->input(0));
      if (it == attr_path_.end()) return unsupported(n, kind);
      const std::string& base = it->second;
      attr_path_[n->output()] = (base.empty() ? "" : base + ".") + n->s(c10::attr::name);
      return;
    }
    // Shape arithmetic and constants feed op arguments; they are read where used.
    static const char* kBookkeeping[] = {"prim::Constant",    "prim::ListConstruct", "aten::size",
                                         "prim::NumToTensor", "aten::Int",           "aten::t",
                                         "aten::floor_divide"};
    for (const char* k : kBookkeeping)
      if (kind == k) {
        // Arithmetic on an activation is computation the IR would lose, not bookkeeping.
        if (kind != "aten::size" && kind != "prim::ListConstruct")
          for (const Value* in : n->inputs())
            if (activation(in) >= 0) return unsupported(n, kind);
        if (kind == "aten::t") transposed_[n->output()] = n->input(0);
        return;
      }
    if (kind == "aten::_convolution" || kind == "aten::conv2d") return conv(n, kind);
    if (kind == "aten::batch_norm") return batch_norm(n);
    if (kind == "aten::linear") return linear(n, n->input(0), n->input(1), n->input(2));
    if (kind == "aten::addmm") return addmm(n);
    if (kind == "aten::matmul") return matmul(n);
    if (kind == "aten::relu" || kind == "aten::relu_") return unary(n, OpKind::kReLU);
    if (kind == "aten::relu6" || kind == "aten::relu6_") return unary(n, OpKind::kReLU6);
    if (kind == "aten::hardswish" || kind == "aten::hardswish_")
      return unary(n, OpKind::kHardswish);
    if (kind == "aten::hardsigmoid" || kind == "aten::hardsigmoid_")
      return unary(n, OpKind::kHardsigmoid);
    if (kind == "aten::sigmoid" || kind == "aten::sigmoid_") return unary(n, OpKind::kSigmoid);
    if (kind == "aten::silu" || kind == "aten::silu_") return unary(n, OpKind::kSiLU);
    if (kind == "aten::tanh" || kind == "aten::tanh_") return unary(n, OpKind::kTanh);
    if (kind == "aten::gelu") {
      const c10::IValue approximate = constant(n->input(1));
      if (approximate.isString() && approximate.toStringRef() != "none")
        return unsupported(n, kind + " (approximate='" + approximate.toStringRef() + "')");
      return unary(n, OpKind::kGELU);
    }
    if (kind == "aten::hardtanh" || kind == "aten::hardtanh_") {
      if (scalar(n->input(1)) == 0.0 && scalar(n->input(2)) == 6.0) return unary(n, OpKind::kReLU6);
      return unsupported(n, kind + " (other than ReLU6's 0..6)");
    }
    if (kind == "aten::add" || kind == "aten::add_") return add(n, kind);
    if (kind == "aten::mul" || kind == "aten::mul_") return mul(n, kind);
    if (kind == "aten::chunk" || kind == "aten::unsafe_chunk" || kind == "aten::split" ||
        kind == "aten::unsafe_split" || kind == "aten::split_with_sizes" ||
        kind == "aten::unsafe_split_with_sizes")
      return split(n, kind);
    if (kind == "prim::ListUnpack") return unpack(n, kind);
    if (kind == "aten::slice") return slice(n, kind);
    if (kind == "aten::transpose") return transpose(n, kind);
    if (kind == "aten::cat") return cat(n, kind);
    if (kind == "aten::max_pool2d") return pool(n, OpKind::kMaxPool, kind);
    if (kind == "aten::avg_pool2d") return pool(n, OpKind::kAvgPool, kind);
    if (kind == "aten::adaptive_avg_pool2d") return adaptive_pool(n);
    if (kind == "aten::flatten" || kind == "aten::view" || kind == "aten::reshape")
      return reshape(n, kind);
    if (kind == "aten::mean") return mean(n, kind);
    if (kind == "aten::dropout" || kind == "aten::dropout_" || kind == "aten::feature_dropout" ||
        kind == "aten::feature_dropout_")
      return dropout(n);
    if (kind == "aten::contiguous" || kind == "aten::detach" || kind == "aten::clone")
      return alias(n);
    unsupported(n, kind);
  }

  // ------------------------------------------------------------------------------- arguments

  c10::IValue constant(const Value* v) const {
    if (v->node()->kind() == c10::prim::ListConstruct) {
      c10::List<int64_t> ints;
      for (const Value* in : v->node()->inputs()) {
        const auto iv = torch::jit::toIValue(in);
        if (!iv || !iv->isInt()) return c10::IValue();
        ints.push_back(iv->toInt());
      }
      return ints;
    }
    const auto iv = torch::jit::toIValue(v);
    return iv ? *iv : c10::IValue();
  }
  double scalar(const Value* v) const {
    const c10::IValue iv = constant(v);
    return iv.isDouble() ? iv.toDouble() : iv.isInt() ? static_cast<double>(iv.toInt()) : NAN;
  }
  std::vector<int64_t> ints(const Value* v) const {
    const c10::IValue iv = constant(v);
    if (iv.isIntList()) return iv.toIntVector();
    if (iv.isInt()) return {iv.toInt()};
    return {};
  }
  std::array<int64_t, 2> pair(const Value* v, int64_t fallback) const {
    auto x = ints(v);
    if (x.empty()) return {fallback, fallback};
    if (x.size() == 1) return {x[0], x[0]};
    return {x[0], x[1]};
  }
  bool is_none(const Value* v) const { return v->type()->kind() == c10::TypeKind::NoneType; }

  /// The module attribute `v` reads (a parameter or buffer), or an undefined tensor.
  at::Tensor param(const Value* v) const {
    const auto it = attr_path_.find(v);
    if (it == attr_path_.end()) return at::Tensor();
    c10::IValue cur = module_._ivalue();
    size_t start = 0;
    const std::string& p = it->second;
    while (start <= p.size()) {
      const size_t dot = std::min(p.find('.', start), p.size());
      const std::string name = p.substr(start, dot - start);
      if (!cur.isObject() || !cur.toObject()->type()->hasAttribute(name)) return at::Tensor();
      cur = cur.toObject()->getAttr(name);
      start = dot + 1;
    }
    return cur.isTensor() ? cur.toTensor() : at::Tensor();
  }
  std::string path_of(const Value* v) const {
    const auto it = attr_path_.find(v);
    return it == attr_path_.end() ? std::string() : it->second;
  }
  /// The layer a parameter belongs to: "layer1.0.conv1" for "layer1.0.conv1.weight".
  static std::string layer_of(const std::string& param_path) {
    const size_t dot = param_path.rfind('.');
    return dot == std::string::npos ? param_path : param_path.substr(0, dot);
  }
  /// The IR node computing activation `v`, or -1 (recorded as unsupported by the caller).
  int activation(const Value* v) const {
    const auto it = node_of_.find(v);
    return it == node_of_.end() ? -1 : it->second;
  }

  // ------------------------------------------------------------------------------- ops

  int emit(torch::jit::Node* n, Node node) { return emit(n->output(0), std::move(node)); }
  int emit(const Value* out, Node node) {
    if (!node.name.empty() && net_.find(node.name) >= 0) node.name.clear();  // shared module
    std::vector<graph::Shape> in;
    for (int j : node.inputs) in.push_back(shapes_.at(j));
    graph::Shape shape = graph::infer_node_shape(node, in);
    const int id = net_.add(std::move(node));
    shapes_.push_back(std::move(shape));
    node_of_[out] = id;
    return id;
  }

  void conv(torch::jit::Node* n, const std::string& kind) {
    const int x = activation(n->input(0));
    const at::Tensor w = param(n->input(1));
    const bool convolution = kind == "aten::_convolution";
    if (x < 0 || !w.defined() || w.dim() != 4 ||
        (convolution && constant(n->input(6)).isBool() && constant(n->input(6)).toBool()))
      return unsupported(n, kind + (w.defined() && w.dim() != 4 ? " (not 2-D)"
                                                                : " (transposed "
                                                                  "or computed "
                                                                  "weights)"));
    Node node;
    node.op = OpKind::kConv2d;
    node.name = layer_of(path_of(n->input(1)));
    node.inputs = {x};
    Attrs& a = node.attrs;
    a.groups = static_cast<int64_t>(scalar(n->input(convolution ? 8 : 6)));
    a.out_channels = w.size(0);
    a.in_channels = w.size(1) * a.groups;
    a.kernel = {w.size(2), w.size(3)};
    a.stride = pair(n->input(3), 1);
    if (constant(n->input(4)).isString())
      return unsupported(n, kind + " (padding given as a string)");
    a.padding = pair(n->input(4), 0);
    a.dilation = pair(n->input(5), 1);
    node.params["weight"] = to_ir(w);
    if (!is_none(n->input(2))) {
      const at::Tensor b = param(n->input(2));
      if (!b.defined()) return unsupported(n, kind + " (computed bias)");
      a.bias = true;
      node.params["bias"] = to_ir(b);
    }
    emit(n, std::move(node));
  }

  void batch_norm(torch::jit::Node* n) {
    const int x = activation(n->input(0));
    const at::Tensor mean = param(n->input(3)), var = param(n->input(4));
    if (x < 0 || !mean.defined() || !var.defined())
      return unsupported(n, "aten::batch_norm (without running statistics)");
    Node node;
    node.op = OpKind::kBatchNorm;
    node.name = layer_of(path_of(n->input(3)));
    node.inputs = {x};
    const at::Tensor w = is_none(n->input(1)) ? at::ones_like(mean) : param(n->input(1));
    const at::Tensor b = is_none(n->input(2)) ? at::zeros_like(mean) : param(n->input(2));
    if (!w.defined() || !b.defined()) return unsupported(n, "aten::batch_norm (computed affine)");
    node.params["weight"] = to_ir(w);
    node.params["bias"] = to_ir(b);
    node.params["running_mean"] = to_ir(mean);
    node.params["running_var"] = to_ir(var);
    const double momentum = scalar(n->input(6));
    node.attrs.momentum = std::isnan(momentum) ? 0.1 : momentum;
    node.attrs.eps = scalar(n->input(7));
    emit(n, std::move(node));
  }

  void linear(torch::jit::Node* n, const Value* input, const Value* weight, const Value* bias) {
    const int x = activation(input);
    at::Tensor w = param(weight);
    if (x < 0 || !w.defined() || w.dim() != 2)
      return unsupported(n, std::string(n->kind().toQualString()) + " (computed weights)");
    Node node;
    node.op = OpKind::kLinear;
    node.name = layer_of(path_of(weight));
    node.inputs = {x};
    node.attrs.out_channels = w.size(0);
    node.attrs.in_channels = w.size(1);
    node.params["weight"] = to_ir(w);
    if (bias != nullptr && !is_none(bias)) {
      const at::Tensor b = param(bias);
      if (!b.defined()) return unsupported(n, "linear (computed bias)");
      node.attrs.bias = true;
      node.params["bias"] = to_ir(b);
    }
    emit(n, std::move(node));
  }

  /// addmm(bias, x, weight.t()): a linear layer as older exports write it.
  void addmm(torch::jit::Node* n) {
    const auto t = transposed_.find(n->input(2));
    if (t == transposed_.end() || scalar(n->input(3)) != 1.0 || scalar(n->input(4)) != 1.0)
      return unsupported(n, "aten::addmm (not bias + x @ weight.t())");
    linear(n, n->input(1), t->second, n->input(0));
  }

  /// matmul(x, weight.t()): a linear layer without bias.
  void matmul(torch::jit::Node* n) {
    const auto t = transposed_.find(n->input(1));
    if (t == transposed_.end()) return unsupported(n, "aten::matmul (not x @ weight.t())");
    linear(n, n->input(0), t->second, nullptr);
  }

  void unary(torch::jit::Node* n, OpKind op) {
    const int x = activation(n->input(0));
    if (x < 0) return unsupported(n, n->kind().toQualString());
    Node node;
    node.op = op;
    node.inputs = {x};
    emit(n, std::move(node));
  }

  void add(torch::jit::Node* n, const std::string& kind) {
    const int a = activation(n->input(0)), b = activation(n->input(1));
    if (a < 0 || b < 0 || scalar(n->input(2)) != 1.0)
      return unsupported(n, kind + " (of a constant, or with alpha)");
    Node node;
    node.op = OpKind::kAdd;
    node.inputs = {a, b};
    emit(n, std::move(node));
  }

  /// x * y of two activations (squeeze-and-excitation's gate * features): the full-size
  /// operand first, the broadcast {C, 1, 1} gate second.
  void mul(torch::jit::Node* n, const std::string& kind) {
    int a = activation(n->input(0)), b = activation(n->input(1));
    if (a < 0 || b < 0) return unsupported(n, kind + " (by a constant)");
    const graph::Shape &sa = shapes_.at(a), &sb = shapes_.at(b);
    if (sa.size() == 3 && sa[1] == 1 && sa[2] == 1 && sa != sb) std::swap(a, b);
    Node node;
    node.op = OpKind::kMul;
    node.inputs = {a, b};
    emit(n, std::move(node));
  }

  /// chunk / split along channels: the channel ranges of the list's elements, emitted as slices
  /// when the list is unpacked.
  void split(torch::jit::Node* n, const std::string& kind) {
    const int x = activation(n->input(0));
    const double dim = scalar(n->input(2));
    if (x < 0 || shapes_.at(x).size() != 3 || (dim != 1 && dim != -3))
      return unsupported(n, kind + " (not along channels)");
    const int64_t channels = shapes_.at(x)[0];
    std::vector<int64_t> sizes;
    if (kind.find("with_sizes") != std::string::npos) {
      sizes = ints(n->input(1));
    } else {
      // chunk(k): pieces of ceil(C / k) channels (torch.chunk's rule); split(s): pieces of s.
      const bool chunk = kind.find("chunk") != std::string::npos;
      const double given = scalar(n->input(1));  // NaN when computed
      if (!(given >= 1)) return unsupported(n, kind + " (computed " + (chunk ? "count)" : "size)"));
      const auto arg = static_cast<int64_t>(given);
      const int64_t size = chunk ? (channels + arg - 1) / arg : arg;
      for (int64_t c = 0; c < channels; c += size) sizes.push_back(std::min(size, channels - c));
    }
    std::vector<std::array<int64_t, 2>> ranges;
    int64_t begin = 0;
    for (int64_t size : sizes) {
      ranges.push_back({begin, begin + size});
      begin += size;
    }
    if (sizes.empty() || begin != channels) return unsupported(n, kind + " (computed sizes)");
    splits_[n->output(0)] = {x, std::move(ranges)};
  }

  void unpack(torch::jit::Node* n, const std::string& kind) {
    const auto it = splits_.find(n->input(0));
    if (it == splits_.end() || it->second.ranges.size() != n->outputs().size())
      return unsupported(n, kind + " (of a list other than a channel split)");
    for (size_t k = 0; k < n->outputs().size(); ++k) {
      Node node;
      node.op = OpKind::kSlice;
      node.inputs = {it->second.input};
      node.attrs.begin = it->second.ranges[k][0];
      node.attrs.end = it->second.ranges[k][1];
      emit(n->output(k), std::move(node));
    }
  }

  /// x[:, begin:end]; a slice over the whole batch axis is the tensor itself.
  void slice(torch::jit::Node* n, const std::string& kind) {
    const int x = activation(n->input(0));
    const double dim = scalar(n->input(1)), step = scalar(n->input(4));
    if (x < 0 || step != 1.0) return unsupported(n, kind + " (strided or of a constant)");
    const c10::IValue start_v = constant(n->input(2)), end_v = constant(n->input(3));
    const int64_t start = start_v.isInt() ? start_v.toInt() : 0;
    int64_t end = end_v.isInt() ? end_v.toInt() : std::numeric_limits<int64_t>::max();
    if (dim == 0 && start == 0 && end == std::numeric_limits<int64_t>::max()) {
      node_of_[n->output(0)] = x;
      return;
    }
    const graph::Shape& s = shapes_.at(x);
    if ((dim != 1 && dim != -3) || s.size() != 3 || start < 0 || end < 0)
      return unsupported(n, kind + " (other than a range of channels)");
    end = std::min(end, s[0]);
    Node node;
    node.op = OpKind::kSlice;
    node.inputs = {x};
    node.attrs.begin = start;
    node.attrs.end = end;
    emit(n, std::move(node));
  }

  /// The middle of a channel shuffle: x.view(N, g, C/g, H, W).transpose(1, 2).
  void transpose(torch::jit::Node* n, const std::string& kind) {
    const auto it = shuffles_.find(n->input(0));
    const double d0 = scalar(n->input(1)), d1 = scalar(n->input(2));
    if (it == shuffles_.end() || it->second.transposed || std::min(d0, d1) != 1.0 ||
        std::max(d0, d1) != 2.0)
      return unsupported(n, kind + " (other than a channel shuffle's)");
    Shuffle s = it->second;
    s.transposed = true;
    shuffles_[n->output(0)] = s;
  }

  void cat(torch::jit::Node* n, const std::string& kind) {
    const Value* list = n->input(0);
    const int64_t dim = static_cast<int64_t>(scalar(n->input(1)));
    if (list->node()->kind() != c10::prim::ListConstruct || (dim != 1 && dim != -3))
      return unsupported(n, kind + " (not along channels)");
    Node node;
    node.op = OpKind::kConcat;
    for (const Value* in : list->node()->inputs()) {
      const int id = activation(in);
      if (id < 0) return unsupported(n, kind + " (of a computed list)");
      node.inputs.push_back(id);
    }
    emit(n, std::move(node));
  }

  void pool(torch::jit::Node* n, OpKind op, const std::string& kind) {
    const int x = activation(n->input(0));
    if (x < 0) return unsupported(n, kind);
    Node node;
    node.op = op;
    node.inputs = {x};
    Attrs& a = node.attrs;
    a.kernel = pair(n->input(1), 1);
    a.stride = ints(n->input(2)).empty() ? a.kernel : pair(n->input(2), 1);
    a.padding = pair(n->input(3), 0);
    if (op == OpKind::kMaxPool) {
      if (pair(n->input(4), 1) != std::array<int64_t, 2>{1, 1})
        return unsupported(n, kind + " (dilated)");
      a.ceil_mode = constant(n->input(5)).toBool();
    } else {
      a.ceil_mode = constant(n->input(4)).toBool();
      const c10::IValue include_pad = constant(n->input(5));
      if ((include_pad.isBool() && !include_pad.toBool()) || !is_none(n->input(6)))
        return unsupported(n, kind + " (count_include_pad=False or divisor_override)");
    }
    emit(n, std::move(node));
  }

  void adaptive_pool(torch::jit::Node* n) {
    const int x = activation(n->input(0));
    if (x < 0) return unsupported(n, "aten::adaptive_avg_pool2d");
    Node node;
    node.op = OpKind::kAdaptiveAvgPool;
    node.inputs = {x};
    node.attrs.output_size = pair(n->input(1), 1);
    emit(n, std::move(node));
  }

  /// flatten(x, 1), or view / reshape to (batch, -1): one vector per sample; or the first or
  /// last view of a channel shuffle (N, g, C/g, H, W) ... (N, C, H, W).
  void reshape(torch::jit::Node* n, const std::string& kind) {
    const int x = activation(n->input(0));
    const std::vector<int64_t> out = traced_sizes(n->output(0));
    if (x >= 0 && kind != "aten::flatten" && out.size() == 5) {
      const graph::Shape& s = shapes_.at(x);
      if (s.size() == 3 && out[1] * out[2] == s[0] && out[3] == s[1] && out[4] == s[2]) {
        shuffles_[n->output(0)] = {x, out[1], false};
        return;
      }
    }
    const auto shuffle = shuffles_.find(n->input(0));
    if (shuffle != shuffles_.end()) {
      const graph::Shape& s = shapes_.at(shuffle->second.input);
      if (!shuffle->second.transposed || out.size() != 4 || out[1] != s[0] || out[2] != s[1] ||
          out[3] != s[2])
        return unsupported(n, kind + " (a 5-D view other than a channel shuffle)");
      Node node;
      node.op = OpKind::kChannelShuffle;
      node.inputs = {shuffle->second.input};
      node.attrs.groups = shuffle->second.groups;
      emit(n, std::move(node));
      return;
    }
    if (x < 0) return unsupported(n, kind);
    const bool flat_target = kind == "aten::flatten"
                                 ? scalar(n->input(1)) == 1.0 && scalar(n->input(2)) == -1.0
                                 : n->input(1)->node()->kind() == c10::prim::ListConstruct &&
                                       n->input(1)->node()->inputs().size() == 2;
    if (!flat_target) return unsupported(n, kind + " (other than to one vector per sample)");
    Node node;
    node.op = OpKind::kFlatten;
    node.inputs = {x};
    emit(n, std::move(node));
  }

  /// mean over H and W: global average pooling, flattened unless keepdim.
  void mean(torch::jit::Node* n, const std::string& kind) {
    const int x = activation(n->input(0));
    auto dims = ints(n->input(1));
    for (auto& d : dims) d = d < 0 ? d + 4 : d;
    std::sort(dims.begin(), dims.end());
    if (x < 0 || dims != std::vector<int64_t>{2, 3} || n->inputs().size() < 3)
      return unsupported(n, kind + " (other than over H and W)");
    Node pool;
    pool.op = OpKind::kAdaptiveAvgPool;
    pool.inputs = {x};
    const int id = emit(n, std::move(pool));
    if (constant(n->input(2)).toBool()) return;
    Node flat;
    flat.op = OpKind::kFlatten;
    flat.inputs = {id};
    emit(n, std::move(flat));
  }

  void dropout(torch::jit::Node* n) {
    const int x = activation(n->input(0));
    if (x < 0) return unsupported(n, n->kind().toQualString());
    Node node;
    node.op = OpKind::kDropout;
    node.inputs = {x};
    node.attrs.p = scalar(n->input(1));
    emit(n, std::move(node));
  }

  void alias(torch::jit::Node* n) {
    const auto shuffle = shuffles_.find(n->input(0));
    if (shuffle != shuffles_.end()) {
      shuffles_[n->output(0)] = shuffle->second;
      return;
    }
    const int x = activation(n->input(0));
    if (x < 0) return unsupported(n, n->kind().toQualString());
    node_of_[n->output(0)] = x;
  }

  void unsupported(torch::jit::Node* n, const std::string& what) {
    Unsupported& u = unsupported_[what];
    if (u.count++ == 0 && n->scope() && !n->scope()->isBlank())
      u.where = n->scope()->namesFromRoot(".");
  }

  /// The sizes the tracer recorded for `v` (batch included), or none.
  static std::vector<int64_t> traced_sizes(const Value* v) {
    const auto t = v->type()->cast<c10::TensorType>();
    if (!t) return {};
    const auto sizes = t->sizes().concrete_sizes();
    return sizes ? *sizes : std::vector<int64_t>();
  }

  struct Split {
    int input = -1;
    std::vector<std::array<int64_t, 2>> ranges;
  };
  struct Shuffle {
    int input = -1;
    int64_t groups = 1;
    bool transposed = false;
  };

  const torch::jit::Module& module_;
  Network net_;
  std::vector<graph::Shape> shapes_{net_.input_shape()};  ///< per IR node, as emitted
  std::string path_;
  std::unordered_map<const Value*, int> node_of_;
  std::unordered_map<const Value*, std::string> attr_path_;
  std::unordered_map<const Value*, const Value*> transposed_;
  std::unordered_map<const Value*, Split> splits_;
  std::unordered_map<const Value*, Shuffle> shuffles_;
  std::map<std::string, Unsupported> unsupported_;
};

/// Names the generated source may use: `torch` (aten's ops, as the default resolver has it) and
/// `quantized` (LibTorch's quantized ops, which Python spells torch.ops.quantized).
struct ExportResolver : torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name,
                                                         torch::jit::GraphFunction&,
                                                         const torch::jit::SourceRange&) override {
    if (name == "torch") return std::make_shared<torch::jit::BuiltinModule>("aten");
    if (name == "quantized") return std::make_shared<torch::jit::BuiltinModule>("quantized");
    return nullptr;
  }
  c10::TypePtr resolveType(const std::string&, const torch::jit::SourceRange&) override {
    return nullptr;
  }
};

std::string ints_text(const std::array<int64_t, 2>& v) {
  return "[" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + "]";
}

/// The TorchScript expression computing node `n` from the values v<input ids>.
std::string expression(const Node& n, const std::function<std::string(const char*)>& param) {
  const Attrs& a = n.attrs;
  const auto in = [&](size_t k) { return "v" + std::to_string(n.inputs.at(k)); };
  switch (n.op) {
    case OpKind::kConv2d:
      return "torch.conv2d(" + in(0) + ", " + param("weight") + ", " +
             (a.bias ? param("bias") : std::string("None")) + ", " + ints_text(a.stride) + ", " +
             ints_text(a.padding) + ", " + ints_text(a.dilation) + ", " + std::to_string(a.groups) +
             ")";
    case OpKind::kLinear:
      return a.bias
                 ? "torch.addmm(" + param("bias") + ", " + in(0) + ", " + param("weight") + ".t())"
                 : "torch.matmul(" + in(0) + ", " + param("weight") + ".t())";
    case OpKind::kBatchNorm:
      return "torch.batch_norm(" + in(0) + ", " + param("weight") + ", " + param("bias") + ", " +
             param("running_mean") + ", " + param("running_var") + ", self.training, " +
             export_float(a.momentum) + ", " + export_float(a.eps) + ", False)";
    case OpKind::kReLU:
      return "torch.relu(" + in(0) + ")";
    case OpKind::kReLU6:
      return "torch.clamp(" + in(0) + ", 0.0, 6.0)";
    case OpKind::kHardswish:
      return "torch.hardswish(" + in(0) + ")";
    case OpKind::kHardsigmoid:
      return "torch.hardsigmoid(" + in(0) + ")";
    case OpKind::kSigmoid:
      return "torch.sigmoid(" + in(0) + ")";
    case OpKind::kSiLU:
      return "torch.silu(" + in(0) + ")";
    case OpKind::kGELU:
      return "torch.gelu(" + in(0) + ")";
    case OpKind::kTanh:
      return "torch.tanh(" + in(0) + ")";
    case OpKind::kMul:
      return in(0) + " * " + in(1);
    case OpKind::kSlice:
      return in(0) + "[:, " + std::to_string(a.begin) + ":" + std::to_string(a.end) + "]";
    case OpKind::kChannelShuffle:
      return in(0) + ".reshape([" + in(0) + ".size(0), " + std::to_string(a.groups) + ", " + in(0) +
             ".size(1) // " + std::to_string(a.groups) + ", " + in(0) + ".size(2), " + in(0) +
             ".size(3)]).transpose(1, 2).reshape(" + in(0) + ".size())";
    case OpKind::kAdd: {
      std::string e = in(0);
      for (size_t k = 1; k < n.inputs.size(); ++k) e += " + " + in(k);
      return e;
    }
    case OpKind::kConcat: {
      std::string list;
      for (size_t k = 0; k < n.inputs.size(); ++k) list += (k ? ", " : "") + in(k);
      return "torch.cat([" + list + "], 1)";
    }
    case OpKind::kMaxPool:
      return "torch.max_pool2d(" + in(0) + ", " + ints_text(a.kernel) + ", " + ints_text(a.stride) +
             ", " + ints_text(a.padding) + ", [1, 1], " + (a.ceil_mode ? "True" : "False") + ")";
    case OpKind::kAvgPool:
      return "torch.avg_pool2d(" + in(0) + ", " + ints_text(a.kernel) + ", " + ints_text(a.stride) +
             ", " + ints_text(a.padding) + ", " + (a.ceil_mode ? "True" : "False") +
             ", True, None)";
    case OpKind::kAdaptiveAvgPool:
      return "torch.adaptive_avg_pool2d(" + in(0) + ", " + ints_text(a.output_size) + ")";
    case OpKind::kFlatten:
      return "torch.flatten(" + in(0) + ", 1)";
    case OpKind::kDropout:
      return "torch.dropout(" + in(0) + ", " + export_float(a.p) + ", self.training)";
    case OpKind::kFakeQuant:
      return "torch.fake_quantize_per_tensor_affine(" + in(0) + ", " + export_float(a.q_scale) +
             ", " + std::to_string(a.q_zero_point) + ", " + std::to_string(a.q_min) + ", " +
             std::to_string(a.q_max) + ")";
    case OpKind::kInput:
      break;
  }
  TIGHTFIT_CHECK(false, "no TorchScript expression for op " << graph::op_name(n.op));
  return "";
}

}  // namespace

std::string export_name(const graph::Node& node, const std::string& key) {
  std::string id;
  for (char c : node.name) id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return "p_" + id + "__" + key;
}

std::string export_float(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  std::string s = os.str();
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";  // a float literal for TorchScript
  return s;
}

void export_torchscript(const graph::Network& net, const std::string& path) {
  export_torchscript(net, path, ExportHooks{});
}

void export_torchscript(const graph::Network& net, const std::string& path,
                        const ExportHooks& hooks) {
  graph::infer_shapes(net);
  torch::jit::Module module(c10::QualifiedName("__torch__.tightfit.CompressedNetwork"));
  module.register_attribute("training", c10::BoolType::get(), true);  // as nn.Module has it
  if (hooks.attributes) hooks.attributes(module);
  std::map<int, const ExportPart*> part_at;  // first node -> its part
  std::vector<bool> covered(static_cast<size_t>(net.size()), false);
  for (const auto& part : hooks.parts) {
    TIGHTFIT_CHECK(!part.nodes.empty() && part.last >= 0, "an export part covers no node");
    part_at[part.nodes.front()] = &part;
    for (int id : part.nodes) covered.at(static_cast<size_t>(id)) = true;
  }
  std::ostringstream src;
  src << "def forward(self, v0):\n";
  for (int i = 1; i < net.size(); ++i) {
    if (const auto it = part_at.find(i); it != part_at.end())
      src << "    v" << it->second->last << " = " << it->second->expression << "\n";
    if (covered[static_cast<size_t>(i)]) continue;
    const Node& n = net.node(i);
    for (const auto& [key, t] : n.params) {
      const at::Tensor value =
          torch::from_blob(const_cast<float*>(t.data.data()), t.shape, torch::kFloat32).clone();
      // Learnable weights are parameters; BatchNorm's running statistics are buffers.
      const bool buffer = key == "running_mean" || key == "running_var";
      module.register_parameter(export_name(n, key), value, buffer);
    }
    const auto param = [&](const char* key) { return "self." + export_name(n, key); };
    src << "    v" << i << " = " << expression(n, param) << "\n";
  }
  src << "    return v" << net.output() << "\n";
  module.define(src.str(), std::make_shared<ExportResolver>());
  module.eval();
  const std::filesystem::path out(path);
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
  try {
    module.save(path);
  } catch (const std::exception& e) {
    throw InputError("cannot write '" + path + "': " + first_line(without_backtrace(e.what())) +
                     "; check the folder exists and is writable");
  }
}

bool is_torchscript_file(const std::string& path) { return file_starts_with(path, kZipMagic); }

graph::Network import_torchscript(const std::string& path, graph::Shape input_shape) {
  check_readable_file(path, "TorchScript file", "check the path");
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, torch::kCPU);
  } catch (const std::exception& e) {
    not_torchscript(path, without_backtrace(e.what()));
  }
  module.eval();
  const graph::Shape shape = input_shape_of(module, std::move(input_shape), path);
  std::vector<int64_t> batch_shape = {1};
  batch_shape.insert(batch_shape.end(), shape.begin(), shape.end());

  // One run under the tracer: control flow is decided by this eval-mode run, and the recorded
  // graph is straight-line whichever way the file was saved.
  torch::NoGradGuard no_grad;
  const at::Tensor example = torch::randn(batch_shape);
  std::shared_ptr<torch::jit::Graph> g;
  try {
    const auto run = [&](torch::jit::Stack in) -> torch::jit::Stack {
      return {module.forward({in.at(0)})};
    };
    g = torch::jit::tracer::trace(
            {example}, run, [](const at::Tensor&) { return std::string(); },
            /*strict=*/false, /*force_outplace=*/false, &module)
            .first->graph;
  } catch (const std::exception& e) {
    throw InputError("running '" + path + "' on an input of " + graph::shape_str(shape) +
                     " failed (" + first_line(without_backtrace(e.what())) +
                     "); give the input shape the model expects (e.g. --input-shape 3,224,224)");
  }
  try {
    return Translator(module, shape, path).run(*g);
  } catch (const InputError& e) {
    if (std::string(e.what()).find(path) != std::string::npos) throw;
    throw InputError("'" + path + "': " + e.what());
  }
}

}  // namespace tightfit::models
