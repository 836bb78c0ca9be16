#pragma once
// TorchScript import: a module saved in Python with `torch.jit.trace(m, x).save(path)` or
// `torch.jit.script(m).save(path)` becomes a tightfit network with its weights. The module is run
// once in eval mode under LibTorch's tracer with an example input, which turns a scripted
// module's control flow (training checks, input-shape checks) into the same straight-line graph a
// traced file holds; each recorded op is then translated into the IR. BatchNorm stays BatchNorm
// (the proxies re-estimate its statistics), and layers take their module path as their name
// (`layer1.0.conv1`, the torchvision state_dict key), so policies read as the user's model does.

#include <functional>
#include <string>
#include <vector>

#include "graph/network.h"

namespace torch::jit {
struct Module;
}

namespace tightfit::models {

/// Whether `path` starts like a TorchScript archive (a zip file).
bool is_torchscript_file(const std::string& path);

/// The network in TorchScript file `path`, for per-sample inputs of `input_shape` (C x H x W;
/// empty: the first convolution's input channels at 224 x 224). InputError, in one line, for a
/// file LibTorch cannot load, a state_dict or pickled model saved with torch.save (with how to
/// save TorchScript instead), and for ops the IR does not have (every unsupported kind, its count
/// and one place it occurs).
graph::Network import_torchscript(const std::string& path, graph::Shape input_shape = {});

/// Writes `net` as a TorchScript module that Python's torch.jit.load and C++'s torch::jit::load
/// read: its own shapes (pruned channels gone, factorized layers as their factors), weights as
/// parameters (fake-quantized layers hold the values their codes stand for), activation
/// fake-quantization as torch.fake_quantize_per_tensor_affine, BatchNorm as batch_norm.
/// forward(x) takes a batch of the network's input shape. InputError when `path` cannot be
/// written.
void export_torchscript(const graph::Network& net, const std::string& path);

/// A stretch of nodes an exporter writes itself (an int8 backend's quantized layer with the
/// BatchNorm and ReLU folded into it): `expression` computes node `last`'s value from earlier
/// values v<id> and from module attributes (self.NAME) that `attributes` registers (`torch.X`
/// names aten's ops, `quantized.X` LibTorch's quantized ones); the nodes in `nodes` (first one
/// first) get no line and no parameters of their own.
struct ExportPart {
  std::vector<int> nodes;
  int last = -1;
  std::string expression;
};
struct ExportHooks {
  std::vector<ExportPart> parts;
  std::function<void(torch::jit::Module&)> attributes;
};

/// The module attribute name the export gives a node's tensor or object `key`
/// ("layer1.0.conv1", "weight" -> "p_layer1_0_conv1__weight").
std::string export_name(const graph::Node& node, const std::string& key);
/// `v` as a TorchScript float literal that reads back as the same double.
std::string export_float(double v);

/// export_torchscript with `hooks`' parts in place of the nodes they cover.
void export_torchscript(const graph::Network& net, const std::string& path,
                        const ExportHooks& hooks);

}  // namespace tightfit::models
