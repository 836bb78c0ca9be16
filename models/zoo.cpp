// Model zoo. Each model is a function that appends its layers to a graph::Builder, written to read
// like the PyTorch definition it mirrors; one table (kZoo) holds the names, the default input
// sizes and the smallest image each model accepts, and is the only place a model is registered.
//
// Naming: conv2d, batch_norm and linear nodes carry exactly the torchvision module path, so their
// parameters line up with a torchvision state_dict. Parameter-free nodes that PyTorch reuses or
// calls functionally get names of their own, unique per node:
//   ResNet block  "layerS.B.relu1" / "relu2" after bn1 / bn2 (bottleneck), "layerS.B.add" for the
//                 residual sum and "layerS.B.relu" for the block output;
//   MobileNetV2   "features.I.add" for the residual sum of inverted residual block I;
//   all models    "avgpool" and "flatten" before the classifier.

#include "models/zoo.h"

#include <sstream>
#include <string>
#include <vector>

#include "core/errors.h"
#include "graph/builder.h"

namespace tightfit::models {
namespace {

using graph::Builder;
using graph::Network;

// Padding argument of Builder::conv that selects "same" padding (kernel / 2).
constexpr int64_t kSamePadding = -1;

struct Sizes {
  int64_t in_channels;
  int64_t image_size;
  int64_t num_classes;
};
constexpr Sizes kSmallSizes{1, 28, 10};        // Fashion-MNIST
constexpr Sizes kImageNetSizes{3, 224, 1000};  // ImageNet

std::string child(const std::string& prefix, int index) {
  return prefix + "." + std::to_string(index);
}

// conv (no bias) -> batch_norm, with the two node names given.
int conv_bn(Builder& b, const std::string& conv_name, const std::string& bn_name, int x,
            int64_t out_channels, int64_t kernel, int64_t stride, int64_t groups = 1) {
  const int y =
      b.conv(conv_name, x, out_channels, kernel, stride, kSamePadding, groups, /*bias=*/false);
  return b.batch_norm(bn_name, y);
}

// torchvision's Conv2dNormActivation with ReLU6: "<prefix>.0" conv, ".1" bn, ".2" relu6.
int conv_bn_relu6(Builder& b, const std::string& prefix, int x, int64_t out_channels,
                  int64_t kernel, int64_t stride, int64_t groups = 1) {
  const int y =
      conv_bn(b, child(prefix, 0), child(prefix, 1), x, out_channels, kernel, stride, groups);
  return b.relu6(child(prefix, 2), y);
}

// ---------------------------------------------------------------------------------------------
// ResNet (He et al. 2016; torchvision v1.5: the stride of a bottleneck sits on its 3x3 conv).

// 1x1 conv + bn projection when the block changes resolution or width (option B), else identity.
int shortcut(Builder& b, const std::string& p, int x, int64_t out_channels, int64_t stride) {
  if (stride == 1 && b.channels(x) == out_channels) return x;
  return conv_bn(b, p + "downsample.0", p + "downsample.1", x, out_channels, 1, stride);
}

int basic_block(Builder& b, const std::string& p, int x, int64_t planes, int64_t stride) {
  int y = conv_bn(b, p + "conv1", p + "bn1", x, planes, 3, stride);
  y = b.relu(p + "relu1", y);
  y = conv_bn(b, p + "conv2", p + "bn2", y, planes, 3, 1);
  const int identity = shortcut(b, p, x, planes, stride);
  return b.relu(p + "relu", b.add(p + "add", y, identity));
}

constexpr int64_t kBottleneckExpansion = 4;

int bottleneck(Builder& b, const std::string& p, int x, int64_t planes, int64_t stride) {
  int y = conv_bn(b, p + "conv1", p + "bn1", x, planes, 1, 1);
  y = b.relu(p + "relu1", y);
  y = conv_bn(b, p + "conv2", p + "bn2", y, planes, 3, stride);
  y = b.relu(p + "relu2", y);
  y = conv_bn(b, p + "conv3", p + "bn3", y, planes * kBottleneckExpansion, 1, 1);
  const int identity = shortcut(b, p, x, planes * kBottleneckExpansion, stride);
  return b.relu(p + "relu", b.add(p + "add", y, identity));
}

using BlockFn = int (*)(Builder&, const std::string&, int, int64_t, int64_t);

// "layer<stage>": `blocks` blocks, the first one carrying the stride.
int res_stage(Builder& b, BlockFn block, int stage, int x, int64_t planes, int blocks,
              int64_t stride) {
  for (int i = 0; i < blocks; ++i) {
    const std::string p = "layer" + std::to_string(stage) + "." + std::to_string(i) + ".";
    x = block(b, p, x, planes, i == 0 ? stride : 1);
  }
  return x;
}

int res_head(Builder& b, int x, int64_t num_classes) {
  x = b.adaptive_avg_pool("avgpool", x, 1, 1);
  x = b.flatten("flatten", x);
  return b.linear("fc", x, num_classes);
}

// CIFAR ResNet with 6n+2 layers: widths 16-32-64 on 32x32 (or 28x28) inputs.
int cifar_resnet(Builder& b, const ZooOptions& opts, int n) {
  int x = conv_bn(b, "conv1", "bn1", b.input(), 16, 3, 1);
  x = b.relu("relu", x);
  x = res_stage(b, basic_block, 1, x, 16, n, 1);
  x = res_stage(b, basic_block, 2, x, 32, n, 2);
  x = res_stage(b, basic_block, 3, x, 64, n, 2);
  return res_head(b, x, opts.num_classes);
}

int resnet8(Builder& b, const ZooOptions& opts) { return cifar_resnet(b, opts, 1); }
int resnet14(Builder& b, const ZooOptions& opts) { return cifar_resnet(b, opts, 2); }
int resnet20(Builder& b, const ZooOptions& opts) { return cifar_resnet(b, opts, 3); }

int imagenet_resnet(Builder& b, const ZooOptions& opts, BlockFn block,
                    const std::vector<int>& layers) {
  int x = conv_bn(b, "conv1", "bn1", b.input(), 64, 7, 2);
  x = b.relu("relu", x);
  x = b.max_pool("maxpool", x, 3, 2, 1);
  const int64_t planes[] = {64, 128, 256, 512};
  for (int s = 0; s < 4; ++s) {
    x = res_stage(b, block, s + 1, x, planes[s], layers.at(s), s == 0 ? 1 : 2);
  }
  return res_head(b, x, opts.num_classes);
}

int resnet18(Builder& b, const ZooOptions& opts) {
  return imagenet_resnet(b, opts, basic_block, {2, 2, 2, 2});
}
int resnet50(Builder& b, const ZooOptions& opts) {
  return imagenet_resnet(b, opts, bottleneck, {3, 4, 6, 3});
}

// ---------------------------------------------------------------------------------------------
// MobileNetV2 (Sandler et al. 2018), laid out as torchvision: "features.<i>" for the stem, each
// inverted residual block and the last 1x1 conv; "classifier.0" dropout, "classifier.1" linear.

struct InvertedResidualSetting {
  int64_t expand_ratio;  // t
  int64_t channels;      // c
  int blocks;            // n
  int64_t stride;        // s, of the first block only
};

// Block "features.<index>": [expand 1x1 -> ] depthwise 3x3 -> project 1x1 (linear bottleneck).
int inverted_residual(Builder& b, int index, int x, int64_t out_channels, int64_t stride,
                      int64_t expand_ratio) {
  const std::string p = "features." + std::to_string(index);
  const std::string conv = p + ".conv";
  const int64_t in_channels = b.channels(x);
  const int64_t hidden = in_channels * expand_ratio;
  int layer = 0;
  int y = x;
  if (expand_ratio != 1) y = conv_bn_relu6(b, child(conv, layer++), y, hidden, 1, 1);
  y = conv_bn_relu6(b, child(conv, layer++), y, hidden, 3, stride, /*groups=*/hidden);
  y = conv_bn(b, child(conv, layer), child(conv, layer + 1), y, out_channels, 1, 1);
  if (stride == 1 && in_channels == out_channels) y = b.add(p + ".add", x, y);
  return y;
}

int mobilenet_v2(Builder& b, const ZooOptions& opts, int64_t stem_channels, int64_t stem_stride,
                 const std::vector<InvertedResidualSetting>& settings, int64_t last_channels,
                 double dropout) {
  int index = 0;
  int x = conv_bn_relu6(b, "features." + std::to_string(index++), b.input(), stem_channels, 3,
                        stem_stride);
  for (const auto& s : settings) {
    for (int i = 0; i < s.blocks; ++i) {
      x = inverted_residual(b, index++, x, s.channels, i == 0 ? s.stride : 1, s.expand_ratio);
    }
  }
  x = conv_bn_relu6(b, "features." + std::to_string(index), x, last_channels, 1, 1);
  x = b.adaptive_avg_pool("avgpool", x, 1, 1);
  x = b.flatten("flatten", x);
  x = b.dropout("classifier.0", x, dropout);
  return b.linear("classifier.1", x, opts.num_classes);
}

// torchvision mobilenet_v2(width_mult=1.0).
int mobilenetv2(Builder& b, const ZooOptions& opts) {
  return mobilenet_v2(b, opts, 32, 2,
                      {{1, 16, 1, 1},
                       {6, 24, 2, 2},
                       {6, 32, 3, 2},
                       {6, 64, 4, 2},
                       {6, 96, 3, 1},
                       {6, 160, 3, 2},
                       {6, 320, 1, 1}},
                      1280, 0.2);
}

// Shallow MobileNetV2 for 28x28 / 32x32 inputs: stride-1 stem, two stride-2 stages, 8x8 or 7x7
// at the end.
int mobilenetv2_small(Builder& b, const ZooOptions& opts) {
  return mobilenet_v2(b, opts, 16, 1, {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 2, 2}, {6, 64, 2, 1}},
                      256, 0.2);
}

// ---------------------------------------------------------------------------------------------
// VGG (Simonyan & Zisserman 2015) with batch norm, laid out as torchvision: "features.<i>" counts
// every module (conv, bn, relu, maxpool), "classifier.<i>" likewise.

constexpr int64_t kMaxPool = -1;  // a 2x2 stride-2 max pool in a VGG configuration

int vgg_features(Builder& b, int x, const std::vector<int64_t>& cfg, bool conv_bias) {
  int index = 0;
  for (const int64_t v : cfg) {
    if (v == kMaxPool) {
      x = b.max_pool("features." + std::to_string(index++), x, 2, 2);
      continue;
    }
    x = b.conv("features." + std::to_string(index++), x, v, 3, 1, kSamePadding, 1, conv_bias);
    x = b.batch_norm("features." + std::to_string(index++), x);
    x = b.relu("features." + std::to_string(index++), x);
  }
  return x;
}

// Small VGG for Fashion-MNIST; sized to train in minutes on two CPU cores.
int vgg_small(Builder& b, const ZooOptions& opts) {
  int x = vgg_features(b, b.input(), {32, kMaxPool, 64, kMaxPool, 64}, /*conv_bias=*/false);
  x = b.flatten("flatten", x);
  x = b.linear("classifier.0", x, 128);
  x = b.relu("classifier.1", x);
  x = b.dropout("classifier.2", x, 0.3);
  return b.linear("classifier.3", x, opts.num_classes);
}

// torchvision vgg11_bn (configuration "A"). Its convolutions keep their bias even though a batch
// norm follows, as torchvision's do, so that its weights load unchanged.
int vgg11_bn(Builder& b, const ZooOptions& opts) {
  constexpr int64_t kHidden = 4096;
  constexpr double kDropout = 0.5;
  int x = vgg_features(
      b, b.input(),
      {64, kMaxPool, 128, kMaxPool, 256, 256, kMaxPool, 512, 512, kMaxPool, 512, 512, kMaxPool},
      /*conv_bias=*/true);
  x = b.adaptive_avg_pool("avgpool", x, 7, 7);
  x = b.flatten("flatten", x);
  x = b.linear("classifier.0", x, kHidden);
  x = b.relu("classifier.1", x);
  x = b.dropout("classifier.2", x, kDropout);
  x = b.linear("classifier.3", x, kHidden);
  x = b.relu("classifier.4", x);
  x = b.dropout("classifier.5", x, kDropout);
  return b.linear("classifier.6", x, opts.num_classes);
}

// ---------------------------------------------------------------------------------------------
// The registry.

struct ZooEntry {
  const char* name;
  int (*build)(Builder&, const ZooOptions&);  // appends the model, returns its output node
  Sizes defaults;
  int64_t min_image_size;  // smallest input side that survives the unpadded pooling stages
  const char* min_image_reason;
};

const ZooEntry kZoo[] = {
    {"vgg_small", vgg_small, kSmallSizes, 4, "its two 2x2 max pools"},
    {"resnet8", resnet8, kSmallSizes, 1, ""},
    {"resnet14", resnet14, kSmallSizes, 1, ""},
    {"resnet20", resnet20, kSmallSizes, 1, ""},
    {"mobilenetv2_small", mobilenetv2_small, kSmallSizes, 1, ""},
    {"resnet18", resnet18, kImageNetSizes, 1, ""},
    {"resnet50", resnet50, kImageNetSizes, 1, ""},
    {"mobilenetv2", mobilenetv2, kImageNetSizes, 1, ""},
    {"vgg11_bn", vgg11_bn, kImageNetSizes, 32, "its five 2x2 max pools"},
};

const ZooEntry& find_entry(const std::string& name) {
  for (const auto& e : kZoo) {
    if (name == e.name) return e;
  }
  std::ostringstream os;
  os << "unknown model '" << name << "'; valid models: ";
  const char* sep = "";
  for (const auto& e : kZoo) {
    os << sep << e.name;
    sep = ", ";
  }
  throw ConfigError(os.str());
}

void require_positive(const char* field, int64_t value) {
  if (value > 0) return;
  throw ConfigError(std::string("zoo option ") + field + " must be positive, got " +
                    std::to_string(value) + "; set it to 1 or more");
}

}  // namespace

std::vector<std::string> zoo_names() {
  std::vector<std::string> names;
  for (const auto& e : kZoo) names.emplace_back(e.name);
  return names;
}

ZooOptions default_options(const std::string& name) {
  const ZooEntry& e = find_entry(name);
  ZooOptions opts;
  opts.in_channels = e.defaults.in_channels;
  opts.image_size = e.defaults.image_size;
  opts.num_classes = e.defaults.num_classes;
  return opts;
}

Network make_model(const std::string& name, const ZooOptions& opts) {
  const ZooEntry& e = find_entry(name);
  require_positive("in_channels", opts.in_channels);
  require_positive("image_size", opts.image_size);
  require_positive("num_classes", opts.num_classes);
  if (opts.image_size < e.min_image_size) {
    throw ConfigError("model '" + name + "' needs image_size >= " +
                      std::to_string(e.min_image_size) + " (" + e.min_image_reason + "), got " +
                      std::to_string(opts.image_size) + "; use a larger image_size");
  }

  Builder b({opts.in_channels, opts.image_size, opts.image_size}, opts.seed);
  const int out = e.build(b, opts);
  Network net = b.finish(out);
  net.meta()["zoo"] = name;
  net.meta()["input"] = std::to_string(opts.in_channels) + "x" + std::to_string(opts.image_size) +
                        "x" + std::to_string(opts.image_size);
  return net;
}

}  // namespace tightfit::models
