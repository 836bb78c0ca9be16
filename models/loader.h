#pragma once
// One way to resolve a model argument (`--model`, a config's model section): a list of loaders,
// each recognizing what it can load. Today a tightfit network file (.tfn, from `tightfit train`
// or `compress`) and a zoo name (seeded random weights); TorchScript and ONNX files are loaders
// to add here.

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
/// it is missing or no loader reads it.
graph::Network load_model_file(const std::string& path);

/// Zoo model `name` with its default options (seeded random weights); ConfigError listing the
/// zoo's models on an unknown name.
graph::Network load_zoo_model(const std::string& name);

/// The names of the loaders, in the order they are tried.
std::vector<std::string> model_loader_names();

}  // namespace tightfit::models
