// Model zoo: every model builds, its shapes infer to the classifier output, its parameter count
// matches the reference implementation, and its node names follow the PyTorch module paths.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "core/errors.h"
#include "graph/builder.h"
#include "graph/network.h"
#include "models/zoo.h"

using tightfit::ConfigError;
using tightfit::graph::Network;
using tightfit::graph::OpKind;
using tightfit::graph::Shape;
using tightfit::models::default_options;
using tightfit::models::make_model;
using tightfit::models::zoo_names;
using tightfit::models::ZooOptions;

namespace {

const std::vector<std::string> kSmallModels = {"vgg_small", "resnet8", "resnet14", "resnet20",
                                               "mobilenetv2_small"};

Shape output_shape(const Network& net) {
  return tightfit::graph::infer_shapes(net).at(net.output());
}

Shape shape_of(const Network& net, const std::string& name) {
  const int id = net.find(name);
  REQUIRE(id >= 0);
  return tightfit::graph::infer_shapes(net).at(id);
}

const tightfit::graph::Node& node_named(const Network& net, const std::string& name) {
  const int id = net.find(name);
  INFO("node " << name);
  REQUIRE(id >= 0);
  return net.node(id);
}

}  // namespace

TEST_CASE("zoo names are stable and every name has default options", "[zoo]") {
  const std::vector<std::string> expected = {"vgg_small", "resnet8",           "resnet14",
                                             "resnet20",  "mobilenetv2_small", "resnet18",
                                             "resnet50",  "mobilenetv2",       "vgg11_bn"};
  REQUIRE(zoo_names() == expected);
  for (const auto& name : kSmallModels) {
    const ZooOptions o = default_options(name);
    CHECK(o.in_channels == 1);
    CHECK(o.image_size == 28);
    CHECK(o.num_classes == 10);
  }
  for (const std::string name : {"resnet18", "resnet50", "mobilenetv2", "vgg11_bn"}) {
    const ZooOptions o = default_options(name);
    CHECK(o.in_channels == 3);
    CHECK(o.image_size == 224);
    CHECK(o.num_classes == 1000);
  }
}

TEST_CASE("small zoo models infer shapes for Fashion-MNIST and CIFAR inputs", "[zoo]") {
  for (const auto& name : kSmallModels) {
    INFO("model " << name);
    const Network fmnist = make_model(name, default_options(name));
    CHECK(output_shape(fmnist) == Shape{10});
    CHECK(fmnist.input_shape() == Shape{1, 28, 28});
    CHECK(fmnist.meta().at("zoo") == name);
    CHECK(fmnist.meta().at("input") == "1x28x28");

    ZooOptions cifar;
    cifar.in_channels = 3;
    cifar.image_size = 32;
    cifar.num_classes = 100;
    const Network c = make_model(name, cifar);
    CHECK(output_shape(c) == Shape{100});
    CHECK(c.meta().at("input") == "3x32x32");
  }
}

TEST_CASE("small zoo models have the expected parameter counts", "[zoo]") {
  const auto params = [](const std::string& name) {
    return make_model(name, default_options(name)).num_params();
  };
  // resnet20 is ~0.27M parameters (He et al.); the 1x1 projection shortcuts add ~3k.
  const int64_t resnet20 = params("resnet20");
  CHECK(resnet20 > 250'000);
  CHECK(resnet20 < 300'000);
  CHECK(params("resnet8") < params("resnet14"));
  CHECK(params("resnet14") < resnet20);
  // vgg_small is dominated by its 64*7*7 -> 128 linear layer.
  const int64_t vgg = params("vgg_small");
  CHECK(vgg > 64 * 7 * 7 * 128);
  CHECK(vgg < 500'000);
  const int64_t mbv2 = params("mobilenetv2_small");
  CHECK(mbv2 > 50'000);
  CHECK(mbv2 < 300'000);
}

TEST_CASE("small zoo node names follow PyTorch module paths", "[zoo]") {
  const Network r = make_model("resnet20", default_options("resnet20"));
  for (const std::string name :
       {"conv1", "bn1", "relu", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu1",
        "layer1.0.conv2", "layer1.0.bn2", "layer1.0.add", "layer1.0.relu", "layer3.2.relu",
        "layer2.0.downsample.0", "layer2.0.downsample.1", "avgpool", "flatten", "fc"}) {
    node_named(r, name);
  }
  // Downsampling only where the resolution or width changes.
  CHECK(r.find("layer1.0.downsample.0") < 0);
  CHECK(r.find("layer2.1.downsample.0") < 0);
  CHECK(r.find("layer4.0.conv1") < 0);
  CHECK(node_named(r, "layer2.0.conv1").attrs.stride[0] == 2);
  CHECK(node_named(r, "layer2.0.downsample.0").attrs.stride[0] == 2);
  CHECK(shape_of(r, "layer3.2.relu") == Shape{64, 7, 7});
  // Every conv followed by batch norm has no bias.
  for (const auto& n : r.nodes()) {
    if (n.op != OpKind::kConv2d) continue;
    INFO("conv " << n.name);
    CHECK_FALSE(n.attrs.bias);
    CHECK(n.params.count("bias") == 0);
  }

  const Network m = make_model("mobilenetv2_small", default_options("mobilenetv2_small"));
  // Block 1 has t == 1: depthwise conv.0, project conv.1, bn conv.2; it keeps 16 channels at
  // stride 1, so it has a residual add (unlike torchvision's 32 -> 16 first block).
  CHECK(node_named(m, "features.0.0").op == OpKind::kConv2d);
  CHECK(node_named(m, "features.0.2").op == OpKind::kReLU6);
  CHECK(node_named(m, "features.1.conv.0.0").attrs.groups == 16);
  CHECK(node_named(m, "features.1.conv.1").op == OpKind::kConv2d);
  CHECK(node_named(m, "features.1.conv.2").op == OpKind::kBatchNorm);
  CHECK(m.find("features.1.add") >= 0);
  // Block 2 expands: expand conv.0, depthwise conv.1 (stride 2), project conv.2, bn conv.3.
  CHECK(node_named(m, "features.2.conv.0.0").attrs.kernel[0] == 1);
  CHECK(node_named(m, "features.2.conv.1.0").attrs.groups == 16 * 6);
  CHECK(node_named(m, "features.2.conv.1.0").attrs.stride[0] == 2);
  CHECK(node_named(m, "features.2.conv.3").op == OpKind::kBatchNorm);
  CHECK(m.find("features.2.add") < 0);
  CHECK(m.find("features.3.add") >= 0);
  CHECK(shape_of(m, "features.8.0") == Shape{256, 7, 7});
  CHECK(node_named(m, "classifier.0").op == OpKind::kDropout);
  CHECK(node_named(m, "classifier.1").op == OpKind::kLinear);

  const Network v = make_model("vgg_small", default_options("vgg_small"));
  CHECK(node_named(v, "features.3").op == OpKind::kMaxPool);
  CHECK(shape_of(v, "features.10") == Shape{64, 7, 7});
  CHECK(node_named(v, "classifier.2").attrs.p == Approx(0.3));
  CHECK(node_named(v, "classifier.3").attrs.out_channels == 10);
}

TEST_CASE("zoo weights are seeded", "[zoo]") {
  ZooOptions opts = default_options("resnet8");
  const Network a = make_model("resnet8", opts);
  const Network b = make_model("resnet8", opts);
  opts.seed = 1;
  const Network c = make_model("resnet8", opts);
  const auto& wa = node_named(a, "layer1.0.conv1").params.at("weight").data;
  CHECK(wa == node_named(b, "layer1.0.conv1").params.at("weight").data);
  CHECK(wa != node_named(c, "layer1.0.conv1").params.at("weight").data);
}

TEST_CASE("reinitialize draws the weights the builder draws", "[zoo]") {
  for (const char* name : {"resnet8", "vgg_small", "mobilenetv2_small"}) {
    ZooOptions opts = default_options(name);
    opts.seed = 3;
    Network net = make_model(name, opts);
    // Weights and BN statistics as training would leave them, then fresh ones with seed 9.
    for (int id = 0; id < net.size(); ++id)
      for (auto& [param, t] : net.node(id).params)
        for (float& v : t.data) v = 0.5f * v + 0.25f;
    tightfit::graph::reinitialize(net, 9);
    opts.seed = 9;
    const Network fresh = make_model(name, opts);
    REQUIRE(net.size() == fresh.size());
    for (int id = 0; id < net.size(); ++id)
      for (const auto& [param, t] : fresh.node(id).params) {
        INFO(name << " " << fresh.node(id).name << "." << param);
        CHECK(net.node(id).params.at(param).data == t.data);
      }
  }
}

TEST_CASE("zoo rejects unknown names and unusable options", "[zoo]") {
  const std::string valid =
      "valid models: vgg_small, resnet8, resnet14, resnet20, mobilenetv2_small, resnet18, "
      "resnet50, mobilenetv2, vgg11_bn";
  REQUIRE_THROWS_AS(make_model("resnet21", ZooOptions{}), ConfigError);
  REQUIRE_THROWS_WITH(make_model("resnet21", ZooOptions{}),
                      Catch::Contains("unknown model 'resnet21'") && Catch::Contains(valid));
  REQUIRE_THROWS_AS(default_options("alexnet"), ConfigError);
  REQUIRE_THROWS_WITH(default_options("alexnet"), Catch::Contains(valid));

  ZooOptions bad;
  bad.num_classes = 0;
  REQUIRE_THROWS_AS(make_model("resnet8", bad), ConfigError);
  REQUIRE_THROWS_WITH(make_model("resnet8", bad), Catch::Contains("num_classes"));
  REQUIRE_THROWS_WITH(make_model("vgg11_bn", ZooOptions{}), Catch::Contains("image_size >= 32"));
}

TEST_CASE("ImageNet ResNets match torchvision", "[zoo][imagenet]") {
  const Network r18 = make_model("resnet18", default_options("resnet18"));
  CHECK(r18.num_params() == 11'689'512);
  CHECK(output_shape(r18) == Shape{1000});
  CHECK(shape_of(r18, "maxpool") == Shape{64, 56, 56});
  CHECK(shape_of(r18, "layer4.1.relu") == Shape{512, 7, 7});
  CHECK(r18.find("layer1.0.downsample.0") < 0);
  CHECK(node_named(r18, "layer4.0.downsample.0").attrs.kernel[0] == 1);

  const Network r50 = make_model("resnet50", default_options("resnet50"));
  CHECK(r50.num_params() == 25'557'032);
  CHECK(output_shape(r50) == Shape{1000});
  CHECK(shape_of(r50, "layer4.2.relu") == Shape{2048, 7, 7});
  // torchvision v1.5: the stride sits on the 3x3 conv, not the first 1x1.
  CHECK(node_named(r50, "layer2.0.conv1").attrs.stride[0] == 1);
  CHECK(node_named(r50, "layer2.0.conv2").attrs.stride[0] == 2);
  CHECK(node_named(r50, "layer1.0.downsample.0").attrs.out_channels == 256);
  CHECK(node_named(r50, "layer3.5.relu2").op == OpKind::kReLU);
}

TEST_CASE("ImageNet MobileNetV2 matches torchvision", "[zoo][imagenet]") {
  const Network m = make_model("mobilenetv2", default_options("mobilenetv2"));
  CHECK(m.num_params() == 3'504'872);
  CHECK(output_shape(m) == Shape{1000});
  CHECK(shape_of(m, "features.18.2") == Shape{1280, 7, 7});
  CHECK(node_named(m, "features.17.conv.1.0").attrs.groups == 960);
  CHECK(node_named(m, "classifier.0").attrs.p == Approx(0.2));
}

TEST_CASE("ImageNet VGG11-BN matches torchvision", "[zoo][imagenet]") {
  const Network v = make_model("vgg11_bn", default_options("vgg11_bn"));
  CHECK(v.num_params() == 132'868'840);
  CHECK(output_shape(v) == Shape{1000});
  CHECK(shape_of(v, "features.28") == Shape{512, 7, 7});
  CHECK(shape_of(v, "avgpool") == Shape{512, 7, 7});
  CHECK(node_named(v, "classifier.6").attrs.out_channels == 1000);
}
