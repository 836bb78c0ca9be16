#pragma once
// The model zoo: small networks for 28x28 / 32x32 data (Fashion-MNIST, CIFAR) that train on a
// few CPU cores, and the ImageNet-size torchvision models (ResNet-18/50, MobileNetV2, VGG11-BN)
// built as graph::Network IR with seeded random weights.
//
// Node names follow the PyTorch module paths of the reference implementations, so that the
// conv2d / batch_norm / linear parameters map one to one onto a torchvision state_dict
// ("layer1.0.conv1.weight", "features.2.conv.1.0.weight", "classifier.1.bias", ...).

#include <cstdint>
#include <string>
#include <vector>

#include "graph/network.h"

namespace tightfit::models {

/// Input and output sizes of a zoo model; defaults are those of the small Fashion-MNIST models.
struct ZooOptions {
  int64_t in_channels = 1;   ///< image channels (1 grayscale, 3 RGB)
  int64_t image_size = 28;   ///< square input side in pixels
  int64_t num_classes = 10;  ///< outputs of the classifier
  uint64_t seed = 0;         ///< drives the random weight initialization
};

/// Names of all zoo models, in a stable order.
std::vector<std::string> zoo_names();

/// Builds a zoo model with seeded random weights. Throws ConfigError("unknown model 'x'; valid
/// models: a, b, ...") on an unknown name and ConfigError on options the model cannot take
/// (non-positive sizes, an image too small for its pooling stages).
graph::Network make_model(const std::string& name, const ZooOptions& opts);

/// Default options for a name: small models 1x28x28 / 10 classes (Fashion-MNIST), ImageNet models
/// 3x224x224 / 1000 classes. Throws ConfigError like make_model on an unknown name.
ZooOptions default_options(const std::string& name);

}  // namespace tightfit::models
