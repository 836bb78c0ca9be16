#pragma once
// The network IR: a DAG of typed nodes with parameter tensors, stored in topological order.
// It is plain data (no LibTorch types) so that compression operators, size accounting and the
// file format stay cheap to compile and easy to test; graph::Executor turns it into LibTorch
// computations.

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tightfit::graph {

using Shape = std::vector<int64_t>;  ///< per-sample shape: {C, H, W} or {features}

/// Dense float32 tensor in row-major (C-contiguous) order.
struct Tensor {
  Shape shape;
  std::vector<float> data;

  Tensor() = default;
  explicit Tensor(Shape s, float fill = 0.0f);
  int64_t numel() const;
};

enum class OpKind {
  kInput,
  kConv2d,
  kLinear,
  kBatchNorm,
  kReLU,
  kReLU6,
  kHardswish,
  kHardsigmoid,
  kSigmoid,
  kSiLU,
  kGELU,  ///< exact (erf) form, PyTorch's default
  kTanh,
  kAdd,
  kMul,  ///< elementwise product; the second input may be {C, 1, 1} (squeeze-and-excitation)
  kConcat,
  kMaxPool,
  kAvgPool,
  kAdaptiveAvgPool,
  kFlatten,
  kDropout,
  kSlice,           ///< channels [begin, end) of its input (chunk / split along channels)
  kChannelShuffle,  ///< view(g, C/g) - transpose - view: output channel i*g+k = input k*C/g+i
  kFakeQuant,  ///< activation fake quantization (uniform, per tensor), straight-through gradient
};

/// Name used in files, JSON and messages ("conv2d", "batch_norm", ...).
const char* op_name(OpKind op);
/// Inverse of op_name; throws InputError listing the known names.
OpKind op_from_name(const std::string& name);
/// True for ops whose output channels are their own (conv2d, linear): pruning decision makers.
bool has_weights(OpKind op);
/// True for elementwise activations (relu, relu6, hardswish, hardsigmoid, sigmoid, silu, gelu,
/// tanh): one input, same shape, channels pass through.
bool is_activation(OpKind op);

/// Attributes of every op kind; each op reads only the fields that apply to it.
struct Attrs {
  int64_t in_channels = 0;                ///< conv2d: input channels; linear: input features
  int64_t out_channels = 0;               ///< conv2d: output channels; linear: output features
  std::array<int64_t, 2> kernel{1, 1};    ///< conv2d, max/avg pool
  std::array<int64_t, 2> stride{1, 1};    ///< conv2d, max/avg pool
  std::array<int64_t, 2> padding{0, 0};   ///< conv2d, max/avg pool
  std::array<int64_t, 2> dilation{1, 1};  ///< conv2d
  int64_t groups = 1;      ///< conv2d (== in == out channels for depthwise), channel_shuffle
  bool bias = false;       ///< conv2d, linear
  bool ceil_mode = false;  ///< max/avg pool
  double eps = 1e-5;       ///< batch_norm
  double momentum = 0.1;   ///< batch_norm running-stat update
  std::array<int64_t, 2> output_size{1, 1};  ///< adaptive avg pool
  double p = 0.5;                            ///< dropout probability
  double q_scale = 1.0;                      ///< fake_quant: step size
  int64_t q_zero_point = 0;                  ///< fake_quant: integer that represents 0.0
  int64_t q_min = 0;                         ///< fake_quant: smallest integer level
  int64_t q_max = 255;                       ///< fake_quant: largest integer level
  int64_t begin = 0;                         ///< slice: first channel
  int64_t end = 0;                           ///< slice: one past the last channel
};

struct Node {
  std::string name;
  OpKind op = OpKind::kInput;
  std::vector<int> inputs;  ///< ids of earlier nodes
  Attrs attrs;
  /// conv2d/linear: "weight" [, "bias"]; batch_norm: "weight", "bias", "running_mean",
  /// "running_var".
  std::map<std::string, Tensor> params;
};

class Network {
 public:
  Network() = default;
  /// A network whose node 0 is the input with the given per-sample shape ({C, H, W}).
  explicit Network(Shape input_shape);

  /// Appends a node; its inputs must be existing nodes and its name unique. Returns its id.
  int add(Node node);

  const std::vector<Node>& nodes() const { return nodes_; }
  const Node& node(int id) const;
  Node& node(int id);
  int size() const { return static_cast<int>(nodes_.size()); }
  /// Node id by name, or -1.
  int find(const std::string& name) const;

  int output() const { return output_ < 0 ? size() - 1 : output_; }
  void set_output(int id);
  const Shape& input_shape() const { return input_shape_; }

  /// Free-form provenance: zoo name, data set, training settings, accuracy.
  std::map<std::string, std::string>& meta() { return meta_; }
  const std::map<std::string, std::string>& meta() const { return meta_; }

  /// Number of float parameters (weights, biases, BN affine; not BN running statistics).
  int64_t num_params() const;

 private:
  std::vector<Node> nodes_;
  std::map<std::string, int> by_name_;
  int output_ = -1;
  Shape input_shape_;
  std::map<std::string, std::string> meta_;
};

/// Per-node output shapes (per sample, batch excluded). Throws InputError naming the first node
/// whose inputs do not fit it.
std::vector<Shape> infer_shapes(const Network& net);

/// Output shape of one node given its input shapes; throws InputError on a mismatch.
Shape infer_node_shape(const Node& node, const std::vector<Shape>& input_shapes);

std::string shape_str(const Shape& s);

}  // namespace tightfit::graph
