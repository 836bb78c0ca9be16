// Shape inference on hand-built networks: every op's output shape matches the PyTorch formula
// worked out by hand, and a network whose shapes do not fit is rejected with an InputError that
// names the offending node.

#include <array>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "core/errors.h"
#include "graph/network.h"

using tightfit::InputError;
using tightfit::graph::Attrs;
using tightfit::graph::infer_shapes;
using tightfit::graph::Network;
using tightfit::graph::Node;
using tightfit::graph::OpKind;
using tightfit::graph::Shape;
using tightfit::graph::Tensor;

namespace {

Node make_node(const std::string& name, OpKind op, std::vector<int> inputs, Attrs attrs = {}) {
  Node n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(inputs);
  n.attrs = attrs;
  return n;
}

/// A conv2d node with correctly shaped (zero) parameters.
Node conv(const std::string& name, int x, int64_t in, int64_t out, std::array<int64_t, 2> kernel,
          std::array<int64_t, 2> stride = {1, 1}, std::array<int64_t, 2> padding = {0, 0},
          std::array<int64_t, 2> dilation = {1, 1}, int64_t groups = 1, bool bias = false) {
  Attrs a;
  a.in_channels = in;
  a.out_channels = out;
  a.kernel = kernel;
  a.stride = stride;
  a.padding = padding;
  a.dilation = dilation;
  a.groups = groups;
  a.bias = bias;
  Node n = make_node(name, OpKind::kConv2d, {x}, a);
  n.params["weight"] = Tensor({out, in / groups, kernel[0], kernel[1]});
  if (bias) n.params["bias"] = Tensor({out});
  return n;
}

Node linear(const std::string& name, int x, int64_t in, int64_t out) {
  Attrs a;
  a.in_channels = in;
  a.out_channels = out;
  a.bias = true;
  Node n = make_node(name, OpKind::kLinear, {x}, a);
  n.params["weight"] = Tensor({out, in});
  n.params["bias"] = Tensor({out});
  return n;
}

Node pool(const std::string& name, OpKind op, int x, int64_t kernel, int64_t stride,
          int64_t padding, bool ceil_mode) {
  Attrs a;
  a.kernel = {kernel, kernel};
  a.stride = {stride, stride};
  a.padding = {padding, padding};
  a.ceil_mode = ceil_mode;
  return make_node(name, op, {x}, a);
}

Node batch_norm(const std::string& name, int x, int64_t c) {
  Node n = make_node(name, OpKind::kBatchNorm, {x});
  for (const char* key : {"weight", "bias", "running_mean", "running_var"})
    n.params[key] = Tensor({c}, 1.0f);
  return n;
}

Shape shape_of(const Network& net, const std::string& name) {
  const int id = net.find(name);
  INFO("node " << name);
  REQUIRE(id >= 0);
  return infer_shapes(net).at(id);
}

/// Asserts that shape inference rejects `net` with an InputError naming node `name`.
void require_rejected(const Network& net, const std::string& name, const std::string& what) {
  INFO("bad node " << name);
  REQUIRE_THROWS_AS(infer_shapes(net), InputError);
  REQUIRE_THROWS_WITH(infer_shapes(net),
                      Catch::Contains("node '" + name + "'") && Catch::Contains(what));
}

}  // namespace

TEST_CASE("convolution shapes follow the PyTorch formula", "[graph][shapes]") {
  Network net({4, 10, 11});
  // floor((10 + 2 - 3) / 2) + 1 = 5, floor((11 + 2 - 3) / 2) + 1 = 6
  net.add(conv("strided", 0, 4, 6, {3, 3}, {2, 2}, {1, 1}));
  // dilation 2: effective kernel 5; 10 - 5 + 1 = 6, 11 - 5 + 1 = 7
  net.add(conv("dilated", 0, 4, 8, {3, 3}, {1, 1}, {0, 0}, {2, 2}));
  // groups 2: weight {6, 2, 3, 3}; "same" padding keeps 10 x 11
  net.add(conv("grouped", 0, 4, 6, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 2, true));
  // depthwise: groups == in == out
  net.add(conv("depthwise", 0, 4, 4, {5, 5}, {1, 1}, {2, 2}, {1, 1}, 4));
  // per-axis kernel/stride/padding: H: floor((10 + 2 - 3) / 3) + 1 = 4; W: (11 - 1) / 1 + 1 = 11
  net.add(conv("asymmetric", 0, 4, 2, {3, 1}, {3, 1}, {1, 0}));
  // pointwise, stride 4: floor(9 / 4) + 1 = 3, floor(10 / 4) + 1 = 3
  net.add(conv("pointwise", 0, 4, 3, {1, 1}, {4, 4}));

  CHECK(shape_of(net, "input") == Shape{4, 10, 11});
  CHECK(shape_of(net, "strided") == Shape{6, 5, 6});
  CHECK(shape_of(net, "dilated") == Shape{8, 6, 7});
  CHECK(shape_of(net, "grouped") == Shape{6, 10, 11});
  CHECK(shape_of(net, "depthwise") == Shape{4, 10, 11});
  CHECK(shape_of(net, "asymmetric") == Shape{2, 4, 11});
  CHECK(shape_of(net, "pointwise") == Shape{3, 3, 3});
}

TEST_CASE("pooling shapes, with and without ceil_mode", "[graph][shapes]") {
  Network net({3, 7, 7});
  net.add(pool("max_floor", OpKind::kMaxPool, 0, 2, 2, 0, false));  // floor(5/2)+1 = 3
  net.add(pool("max_ceil", OpKind::kMaxPool, 0, 2, 2, 0, true));    // ceil(5/2)+1 = 4
  net.add(pool("avg_pad", OpKind::kAvgPool, 0, 3, 2, 1, false));    // floor(6/2)+1 = 4
  net.add(pool("avg_floor", OpKind::kAvgPool, 0, 2, 3, 0, false));  // floor(5/3)+1 = 2
  net.add(pool("avg_ceil", OpKind::kAvgPool, 0, 2, 3, 0, true));    // ceil(5/3)+1 = 3
  // ceil_mode whose last window would start in the right padding: ceil(7/2)+1 = 5 windows, but
  // the fifth starts at 8 >= 7 + 1, so PyTorch drops it: 4.
  net.add(pool("max_ceil_drop", OpKind::kMaxPool, 0, 2, 2, 1, true));
  Attrs adaptive;
  adaptive.output_size = {2, 3};
  net.add(make_node("adaptive", OpKind::kAdaptiveAvgPool, {0}, adaptive));

  CHECK(shape_of(net, "max_floor") == Shape{3, 3, 3});
  CHECK(shape_of(net, "max_ceil") == Shape{3, 4, 4});
  CHECK(shape_of(net, "avg_pad") == Shape{3, 4, 4});
  CHECK(shape_of(net, "avg_floor") == Shape{3, 2, 2});
  CHECK(shape_of(net, "avg_ceil") == Shape{3, 3, 3});
  CHECK(shape_of(net, "max_ceil_drop") == Shape{3, 4, 4});
  CHECK(shape_of(net, "adaptive") == Shape{3, 2, 3});
}

TEST_CASE("flatten, linear, concat, add and pass-through ops", "[graph][shapes]") {
  Network net({3, 8, 8});
  const int a = net.add(conv("a", 0, 3, 4, {3, 3}, {1, 1}, {1, 1}));
  const int b = net.add(conv("b", 0, 3, 6, {1, 1}));
  const int cat = net.add(make_node("cat", OpKind::kConcat, {a, b, a}));
  const int bn = net.add(batch_norm("bn", cat, 14));
  const int relu = net.add(make_node("relu", OpKind::kReLU, {bn}));
  const int relu6 = net.add(make_node("relu6", OpKind::kReLU6, {relu}));
  const int hs = net.add(make_node("hardswish", OpKind::kHardswish, {relu6}));
  const int sum = net.add(make_node("sum", OpKind::kAdd, {hs, relu, cat}));
  const int mp = net.add(pool("mp", OpKind::kMaxPool, sum, 2, 2, 0, false));
  const int flat = net.add(make_node("flatten", OpKind::kFlatten, {mp}));
  const int drop = net.add(make_node("dropout", OpKind::kDropout, {flat}));
  net.add(linear("fc", drop, 14 * 4 * 4, 5));

  CHECK(shape_of(net, "cat") == Shape{14, 8, 8});
  CHECK(shape_of(net, "bn") == Shape{14, 8, 8});
  CHECK(shape_of(net, "hardswish") == Shape{14, 8, 8});
  CHECK(shape_of(net, "sum") == Shape{14, 8, 8});
  CHECK(shape_of(net, "flatten") == Shape{224});
  CHECK(shape_of(net, "dropout") == Shape{224});
  CHECK(shape_of(net, "fc") == Shape{5});
  CHECK(net.output() == net.size() - 1);
  // conv weights 4*3*3*3 + 6*3, BN affine 2*14 (running statistics excluded), fc 224*5 + 5
  CHECK(net.num_params() == 108 + 18 + 28 + 1120 + 5);
}

TEST_CASE("shape mismatches throw InputError naming the node", "[graph][shapes]") {
  SECTION("conv input channels") {
    Network net({3, 8, 8});
    net.add(conv("bad_conv", 0, 4, 4, {3, 3}));
    require_rejected(net, "bad_conv", "expects 4 input channels, got 3");
  }
  SECTION("conv groups that do not divide the channels") {
    Network net({6, 8, 8});
    Node n = conv("bad_groups", 0, 6, 4, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 3);
    n.params["weight"] = Tensor({4, 2, 1, 1});
    net.add(n);
    require_rejected(net, "bad_groups", "groups 3 must divide");
  }
  SECTION("conv weight of the wrong shape") {
    Network net({3, 8, 8});
    Node n = conv("bad_weight", 0, 3, 4, {3, 3});
    n.params["weight"] = Tensor({4, 3, 1, 1});
    net.add(n);
    require_rejected(net, "bad_weight", "parameter 'weight' has shape 4x3x1x1, expected 4x3x3x3");
  }
  SECTION("conv bias missing") {
    Network net({3, 8, 8});
    Node n = conv("no_bias", 0, 3, 4, {3, 3}, {1, 1}, {0, 0}, {1, 1}, 1, true);
    n.params.erase("bias");
    net.add(n);
    require_rejected(net, "no_bias", "parameter 'bias' missing");
  }
  SECTION("conv input too small") {
    Network net({3, 2, 2});
    net.add(conv("too_small", 0, 3, 4, {3, 3}));
    require_rejected(net, "too_small", "too small");
  }
  SECTION("linear on an unflattened input") {
    Network net({3, 2, 2});
    net.add(linear("fc", 0, 12, 5));
    require_rejected(net, "fc", "flat input");
  }
  SECTION("linear with the wrong number of features") {
    Network net({3, 2, 2});
    const int flat = net.add(make_node("flatten", OpKind::kFlatten, {0}));
    net.add(linear("fc", flat, 10, 5));
    require_rejected(net, "fc", "expects 10 input features, got 12");
  }
  SECTION("add of different shapes") {
    Network net({3, 8, 8});
    const int a = net.add(conv("a", 0, 3, 4, {1, 1}));
    const int b = net.add(conv("b", 0, 3, 5, {1, 1}));
    net.add(make_node("sum", OpKind::kAdd, {a, b}));
    require_rejected(net, "sum", "input shapes differ: 4x8x8 vs 5x8x8");
  }
  SECTION("add of one input") {
    Network net({3, 8, 8});
    net.add(make_node("sum", OpKind::kAdd, {0}));
    require_rejected(net, "sum", "at least 2 inputs");
  }
  SECTION("concat of different spatial sizes") {
    Network net({3, 8, 8});
    const int a = net.add(conv("a", 0, 3, 4, {1, 1}, {2, 2}));
    net.add(make_node("cat", OpKind::kConcat, {0, a}));
    require_rejected(net, "cat", "spatial sizes differ");
  }
  SECTION("batch norm of the wrong width") {
    Network net({3, 8, 8});
    net.add(batch_norm("bn", 0, 4));
    require_rejected(net, "bn", "expected 3");
  }
  SECTION("pool on a flat input") {
    Network net({3, 8, 8});
    const int flat = net.add(make_node("flatten", OpKind::kFlatten, {0}));
    net.add(pool("mp", OpKind::kMaxPool, flat, 2, 2, 0, false));
    require_rejected(net, "mp", "CxHxW");
  }
}

TEST_CASE("networks reject duplicate names and forward references", "[graph]") {
  Network net({3, 8, 8});
  net.add(make_node("relu", OpKind::kReLU, {0}));
  REQUIRE_THROWS_AS(net.add(make_node("relu", OpKind::kReLU, {1})), InputError);
  REQUIRE_THROWS_WITH(net.add(make_node("relu", OpKind::kReLU, {1})),
                      Catch::Contains("duplicate node name 'relu'"));
  REQUIRE_THROWS_WITH(net.add(make_node("later", OpKind::kReLU, {5})),
                      Catch::Contains("node 'later'") && Catch::Contains("not an earlier node"));
  REQUIRE_THROWS_AS(infer_shapes(Network()), InputError);
  // Unnamed nodes get "<op>_<id>".
  const int id = net.add(make_node("", OpKind::kReLU6, {1}));
  CHECK(net.node(id).name == "relu6_2");
  CHECK(net.find("relu6_2") == id);
  CHECK(net.find("nope") == -1);
}

TEST_CASE("op names round-trip and unknown ones list the known ops", "[graph]") {
  using tightfit::graph::op_from_name;
  using tightfit::graph::op_name;
  for (OpKind op :
       {OpKind::kInput,   OpKind::kConv2d,         OpKind::kLinear,      OpKind::kBatchNorm,
        OpKind::kReLU,    OpKind::kReLU6,          OpKind::kHardswish,   OpKind::kAdd,
        OpKind::kConcat,  OpKind::kMaxPool,        OpKind::kAvgPool,     OpKind::kAdaptiveAvgPool,
        OpKind::kFlatten, OpKind::kDropout,        OpKind::kHardsigmoid, OpKind::kSigmoid,
        OpKind::kSiLU,    OpKind::kGELU,           OpKind::kTanh,        OpKind::kMul,
        OpKind::kSlice,   OpKind::kChannelShuffle, OpKind::kFakeQuant})
    CHECK(op_from_name(op_name(op)) == op);
  REQUIRE_THROWS_AS(op_from_name("conv3d"), InputError);
  REQUIRE_THROWS_WITH(op_from_name("conv3d"),
                      Catch::Contains("unknown op 'conv3d'") && Catch::Contains("conv2d, linear"));
}
