#pragma once
// One way to resolve a model argument (`--model`, a config's model section): a list of loaders,
// each recognizing what it can load: a TorchScript file (models/torchscript.h), a tightfit
// network file (.tfn, from `tightfit train` or `compress`) and a zoo name (seeded random
// weights); ONNX is a loader to add here.

#include <string>
#include <vector>

#include "graph/network.h"

namespace tightfit::models {

/// The network `spec` names: an existing file (by its format), else a zoo name. InputError
/// naming both readings and the zoo's models when neither fits.
graph::Network load_model(const std::string& spec);

/// InputError (as load_model's) when `spec` names neither an existing file nor a zoo model;
/// reads nothing.
void check_model_spec(const std::string& spec);

/// The network in file `path`, read by the loader of its format; InputError naming the file when
/// it is missing or no loader reads it. `input_shape` (C x H x W) overrides import_input_shape()
/// for formats that do not record their input.
graph::Network load_model_file(const std::string& path, const graph::Shape& input_shape = {});

/// Zoo model `name` with its default options (seeded random weights); ConfigError listing the
/// zoo's models on an unknown name.
graph::Network load_zoo_model(const std::string& name);

/// The names of the loaders, in the order they are tried.
std::vector<std::string> model_loader_names();

/// The per-sample input shape (C x H x W) imported models are traced with when their file does
/// not say it (TorchScript): set from `--input-shape` or a config's `model.input_shape`; empty
/// (the default): the first convolution's channels at 224 x 224.
void set_import_input_shape(graph::Shape shape);
const graph::Shape& import_input_shape();

/// "3,224,224" as a shape; ConfigError naming `what` unless it is three positive integers.
graph::Shape parse_input_shape(const std::string& text, const std::string& what);

}  // namespace tightfit::models
