#include "graph/network.h"

#include <cmath>
#include <sstream>

#include "core/errors.h"

namespace tightfit::graph {

namespace {

struct OpInfo {
  OpKind op;
  const char* name;
};

constexpr OpInfo kOps[] = {
    {OpKind::kInput, "input"},
    {OpKind::kConv2d, "conv2d"},
    {OpKind::kLinear, "linear"},
    {OpKind::kBatchNorm, "batch_norm"},
    {OpKind::kReLU, "relu"},
    {OpKind::kReLU6, "relu6"},
    {OpKind::kHardswish, "hardswish"},
    {OpKind::kHardsigmoid, "hardsigmoid"},
    {OpKind::kSigmoid, "sigmoid"},
    {OpKind::kSiLU, "silu"},
    {OpKind::kGELU, "gelu"},
    {OpKind::kTanh, "tanh"},
    {OpKind::kAdd, "add"},
    {OpKind::kMul, "mul"},
    {OpKind::kConcat, "concat"},
    {OpKind::kMaxPool, "max_pool"},
    {OpKind::kAvgPool, "avg_pool"},
    {OpKind::kAdaptiveAvgPool, "adaptive_avg_pool"},
    {OpKind::kFlatten, "flatten"},
    {OpKind::kDropout, "dropout"},
    {OpKind::kSlice, "slice"},
    {OpKind::kChannelShuffle, "channel_shuffle"},
    {OpKind::kFakeQuant, "fake_quant"},
};

int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t eff = d * (k - 1) + 1;
  const int64_t num = in + 2 * p - eff;
  if (num < 0) return 0;
  int64_t out = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
  // PyTorch rule: the last window must start inside the input (or left padding).
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

[[noreturn]] void shape_error(const Node& node, const std::string& what) {
  throw InputError("node '" + node.name + "' (" + op_name(node.op) + "): " + what +
                   "; fix the model definition so the shapes agree");
}

/// A dimension no real network reaches: sizes above it come from corrupt or hostile files and
/// would overflow the products shape inference and allocation compute.
constexpr int64_t kMaxDim = int64_t{1} << 24;

std::string pair_str(const std::array<int64_t, 2>& v) {
  return std::to_string(v[0]) + "x" + std::to_string(v[1]);
}

/// Every attribute the node's op reads is in its range (checked before any arithmetic uses it,
/// so that a stride of 0 is a message, not a division by zero).
void check_attrs(const Node& node) {
  const Attrs& a = node.attrs;
  auto bad = [&](const std::string& attr, const std::string& value, const std::string& rule) {
    throw InputError("node '" + node.name + "' (" + op_name(node.op) + "): " + attr + " is " +
                     value + "; " + rule + " (a corrupt or hand-edited model file?)");
  };
  auto pair_in = [&](const char* attr, const std::array<int64_t, 2>& v, int64_t lo, int64_t hi) {
    for (int64_t x : v)
      if (x < lo || x > hi)
        bad(attr, pair_str(v),
            "each must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  };
  auto count_in = [&](const char* attr, int64_t v) {
    if (v < 1 || v > kMaxDim)
      bad(attr, std::to_string(v), "it must be in [1, " + std::to_string(kMaxDim) + "]");
  };
  switch (node.op) {
    case OpKind::kConv2d: {
      count_in("in_channels", a.in_channels);
      count_in("out_channels", a.out_channels);
      count_in("groups", a.groups);
      pair_in("kernel", a.kernel, 1, kMaxDim);
      pair_in("stride", a.stride, 1, kMaxDim);
      pair_in("dilation", a.dilation, 1, kMaxDim);
      for (int i = 0; i < 2; ++i)
        if (a.padding[i] < 0 || a.padding[i] > a.dilation[i] * (a.kernel[i] - 1))
          bad("padding", pair_str(a.padding),
              "it must be in [0, dilation x (kernel - 1)] = [0, " +
                  std::to_string(a.dilation[i] * (a.kernel[i] - 1)) + "]");
      break;
    }
    case OpKind::kLinear:
      count_in("in_features", a.in_channels);
      count_in("out_features", a.out_channels);
      break;
    case OpKind::kMaxPool:
    case OpKind::kAvgPool:
      pair_in("kernel", a.kernel, 1, kMaxDim);
      pair_in("stride", a.stride, 1, kMaxDim);
      for (int i = 0; i < 2; ++i)
        if (a.padding[i] < 0 || a.padding[i] > a.kernel[i] / 2)
          bad("padding", pair_str(a.padding), "it must be in [0, kernel / 2] (PyTorch's rule)");
      break;
    case OpKind::kAdaptiveAvgPool:  // may enlarge (torchvision's VGG on small inputs)
      pair_in("output_size", a.output_size, 1, 4096);
      break;
    case OpKind::kBatchNorm:
      if (!(a.eps > 0 && a.eps < 1)) bad("eps", std::to_string(a.eps), "it must be in (0, 1)");
      if (!(a.momentum >= 0 && a.momentum <= 1))
        bad("momentum", std::to_string(a.momentum), "it must be in [0, 1]");
      break;
    case OpKind::kSlice:
      if (a.begin < 0 || a.end <= a.begin || a.end > kMaxDim)
        bad("channel range", "[" + std::to_string(a.begin) + ", " + std::to_string(a.end) + ")",
            "it needs 0 <= begin < end");
      break;
    case OpKind::kChannelShuffle:
      count_in("groups", a.groups);
      break;
    case OpKind::kDropout:
      if (!(a.p >= 0 && a.p <= 1)) bad("p", std::to_string(a.p), "it must be in [0, 1]");
      break;
    case OpKind::kFakeQuant:
      if (!(a.q_scale > 0 && std::isfinite(a.q_scale)))
        bad("scale", std::to_string(a.q_scale), "it must be a finite number > 0");
      if (a.q_min >= a.q_max || a.q_zero_point < a.q_min || a.q_zero_point > a.q_max ||
          a.q_max - a.q_min > 65535)
        bad("levels",
            "[" + std::to_string(a.q_min) + ", " + std::to_string(a.q_max) + "] with zero point " +
                std::to_string(a.q_zero_point),
            "it needs q_min < q_max (at most 16 bits apart) and the zero point between them");
      break;
    default:
      break;
  }
}

}  // namespace

Tensor::Tensor(Shape s, float fill) : shape(std::move(s)) {
  data.assign(static_cast<size_t>(numel()), fill);
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const char* op_name(OpKind op) {
  for (const auto& info : kOps)
    if (info.op == op) return info.name;
  return "unknown";
}

OpKind op_from_name(const std::string& name) {
  std::string known;
  for (const auto& info : kOps) {
    if (name == info.name) return info.op;
    known += (known.empty() ? "" : ", ") + std::string(info.name);
  }
  throw InputError("unknown op '" + name + "'; known ops: " + known);
}

bool has_weights(OpKind op) { return op == OpKind::kConv2d || op == OpKind::kLinear; }

bool is_activation(OpKind op) {
  switch (op) {
    case OpKind::kReLU:
    case OpKind::kReLU6:
    case OpKind::kHardswish:
    case OpKind::kHardsigmoid:
    case OpKind::kSigmoid:
    case OpKind::kSiLU:
    case OpKind::kGELU:
    case OpKind::kTanh:
      return true;
    default:
      return false;
  }
}

Network::Network(Shape input_shape) : input_shape_(std::move(input_shape)) {
  Node in;
  in.name = "input";
  in.op = OpKind::kInput;
  add(std::move(in));
}

int Network::add(Node node) {
  const int id = size();
  if (node.name.empty()) node.name = std::string(op_name(node.op)) + "_" + std::to_string(id);
  if (by_name_.count(node.name)) throw InputError("duplicate node name '" + node.name + "'");
  for (int in : node.inputs)
    if (in < 0 || in >= id)
      throw InputError("node '" + node.name + "' reads node " + std::to_string(in) +
                       ", which is not an earlier node");
  by_name_[node.name] = id;
  nodes_.push_back(std::move(node));
  return id;
}

const Node& Network::node(int id) const {
  TIGHTFIT_CHECK(id >= 0 && id < size(), "node id " << id);
  return nodes_[id];
}

Node& Network::node(int id) {
  TIGHTFIT_CHECK(id >= 0 && id < size(), "node id " << id);
  return nodes_[id];
}

int Network::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? -1 : it->second;
}

void Network::set_output(int id) {
  TIGHTFIT_CHECK(id >= 0 && id < size(), "output id " << id);
  output_ = id;
}

int64_t Network::num_params() const {
  int64_t n = 0;
  for (const auto& node : nodes_)
    for (const auto& [key, t] : node.params)
      if (key == "weight" || key == "bias") n += t.numel();
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  for (size_t i = 0; i < s.size(); ++i) os << (i ? "x" : "") << s[i];
  return os.str();
}

Shape infer_node_shape(const Node& node, const std::vector<Shape>& in) {
  check_attrs(node);
  const Attrs& a = node.attrs;
  auto need_inputs = [&](size_t n) {
    if (in.size() != n)
      shape_error(node,
                  "expects " + std::to_string(n) + " input(s), has " + std::to_string(in.size()));
  };
  auto need_chw = [&](const Shape& s) {
    if (s.size() != 3) shape_error(node, "expects a CxHxW input, got " + shape_str(s));
  };
  auto check_param = [&](const char* key, const Shape& expected) {
    auto it = node.params.find(key);
    if (it == node.params.end()) shape_error(node, std::string("parameter '") + key + "' missing");
    if (it->second.shape != expected)
      shape_error(node, std::string("parameter '") + key + "' has shape " +
                            shape_str(it->second.shape) + ", expected " + shape_str(expected));
    if (static_cast<int64_t>(it->second.data.size()) != it->second.numel())
      shape_error(node, std::string("parameter '") + key + "' data size does not match its shape");
  };

  switch (node.op) {
    case OpKind::kInput:
      shape_error(node, "input nodes have no inputs to infer from");
    case OpKind::kConv2d: {
      need_inputs(1);
      need_chw(in[0]);
      if (in[0][0] != a.in_channels)
        shape_error(node, "expects " + std::to_string(a.in_channels) + " input channels, got " +
                              std::to_string(in[0][0]));
      if (a.groups < 1 || a.in_channels % a.groups || a.out_channels % a.groups)
        shape_error(node, "groups " + std::to_string(a.groups) + " must divide in (" +
                              std::to_string(a.in_channels) + ") and out (" +
                              std::to_string(a.out_channels) + ") channels");
      check_param("weight", {a.out_channels, a.in_channels / a.groups, a.kernel[0], a.kernel[1]});
      if (a.bias) check_param("bias", {a.out_channels});
      const int64_t h =
          pooled_size(in[0][1], a.kernel[0], a.stride[0], a.padding[0], a.dilation[0], false);
      const int64_t w =
          pooled_size(in[0][2], a.kernel[1], a.stride[1], a.padding[1], a.dilation[1], false);
      if (h < 1 || w < 1) shape_error(node, "input " + shape_str(in[0]) + " is too small");
      return {a.out_channels, h, w};
    }
    case OpKind::kLinear: {
      need_inputs(1);
      if (in[0].size() != 1)
        shape_error(node, "expects a flat input (add a flatten node), got " + shape_str(in[0]));
      if (in[0][0] != a.in_channels)
        shape_error(node, "expects " + std::to_string(a.in_channels) + " input features, got " +
                              std::to_string(in[0][0]));
      check_param("weight", {a.out_channels, a.in_channels});
      if (a.bias) check_param("bias", {a.out_channels});
      return {a.out_channels};
    }
    case OpKind::kBatchNorm: {
      need_inputs(1);
      need_chw(in[0]);
      for (const char* key : {"weight", "bias", "running_mean", "running_var"})
        check_param(key, {in[0][0]});
      return in[0];
    }
    case OpKind::kReLU:
    case OpKind::kReLU6:
    case OpKind::kHardswish:
    case OpKind::kHardsigmoid:
    case OpKind::kSigmoid:
    case OpKind::kSiLU:
    case OpKind::kGELU:
    case OpKind::kTanh:
    case OpKind::kDropout:
      need_inputs(1);
      return in[0];
    case OpKind::kMul: {
      // The second input may be squeeze-and-excitation's gate, broadcast over H and W.
      need_inputs(2);
      const Shape& x = in[0];
      const Shape& y = in[1];
      const bool gate = x.size() == 3 && y.size() == 3 && x[0] == y[0] && y[1] == 1 && y[2] == 1;
      if (x != y && !gate)
        shape_error(node, "input shapes " + shape_str(x) + " and " + shape_str(y) +
                              " neither agree nor broadcast as a Cx1x1 gate (second input)");
      return x;
    }
    case OpKind::kSlice:
      need_inputs(1);
      need_chw(in[0]);
      if (a.end > in[0][0])
        shape_error(node, "channels [" + std::to_string(a.begin) + ", " + std::to_string(a.end) +
                              ") of an input with " + std::to_string(in[0][0]));
      return {a.end - a.begin, in[0][1], in[0][2]};
    case OpKind::kChannelShuffle:
      need_inputs(1);
      need_chw(in[0]);
      if (in[0][0] % a.groups)
        shape_error(node, std::to_string(a.groups) + " groups do not divide " +
                              std::to_string(in[0][0]) + " channels");
      return in[0];
    case OpKind::kFakeQuant:
      need_inputs(1);
      if (!(a.q_scale > 0) || a.q_min >= a.q_max || a.q_zero_point < a.q_min ||
          a.q_zero_point > a.q_max)
        shape_error(node, "needs scale > 0 and q_min <= zero_point <= q_max, q_min < q_max");
      return in[0];
    case OpKind::kAdd:
      if (in.size() < 2) shape_error(node, "expects at least 2 inputs");
      for (const auto& s : in)
        if (s != in[0])
          shape_error(node, "input shapes differ: " + shape_str(in[0]) + " vs " + shape_str(s));
      return in[0];
    case OpKind::kConcat: {
      if (in.empty()) shape_error(node, "expects at least 1 input");
      Shape out = in[0];
      need_chw(out);
      for (size_t i = 1; i < in.size(); ++i) {
        need_chw(in[i]);
        if (in[i][1] != out[1] || in[i][2] != out[2])
          shape_error(node,
                      "spatial sizes differ: " + shape_str(in[0]) + " vs " + shape_str(in[i]));
        out[0] += in[i][0];
      }
      return out;
    }
    case OpKind::kMaxPool:
    case OpKind::kAvgPool: {
      need_inputs(1);
      need_chw(in[0]);
      const int64_t h =
          pooled_size(in[0][1], a.kernel[0], a.stride[0], a.padding[0], 1, a.ceil_mode);
      const int64_t w =
          pooled_size(in[0][2], a.kernel[1], a.stride[1], a.padding[1], 1, a.ceil_mode);
      if (h < 1 || w < 1) shape_error(node, "input " + shape_str(in[0]) + " is too small");
      return {in[0][0], h, w};
    }
    case OpKind::kAdaptiveAvgPool:
      need_inputs(1);
      need_chw(in[0]);
      return {in[0][0], a.output_size[0], a.output_size[1]};
    case OpKind::kFlatten: {
      need_inputs(1);
      int64_t n = 1;
      for (int64_t d : in[0]) n *= d;
      return {n};
    }
  }
  shape_error(node, "unhandled op");
}

std::vector<Shape> infer_shapes(const Network& net) {
  std::vector<Shape> shapes(net.size());
  if (net.input_shape().empty()) throw InputError("network has no input shape");
  int64_t elements = 1;
  for (int64_t d : net.input_shape()) {
    if (d < 1 || d > kMaxDim)
      throw InputError("the network's input shape " + shape_str(net.input_shape()) +
                       " has a dimension outside [1, " + std::to_string(kMaxDim) +
                       "] (a corrupt model file?)");
    elements *= d;
    if (elements > kMaxDim * 64)
      throw InputError("the network's input shape " + shape_str(net.input_shape()) +
                       " is larger than any image this tool handles (a corrupt model file?)");
  }
  shapes[0] = net.input_shape();
  for (int i = 1; i < net.size(); ++i) {
    const Node& node = net.node(i);
    std::vector<Shape> in;
    for (int j : node.inputs) in.push_back(shapes[j]);
    shapes[i] = infer_node_shape(node, in);
  }
  return shapes;
}

}  // namespace tightfit::graph
