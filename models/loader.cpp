// The model loaders, tried in order. A new model format is one loader file and one entry in
// kFileLoaders.

#include "models/loader.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>

#include "core/errors.h"
#include "core/files.h"
#include "core/json.h"
#include "graph/serialize.h"
#include "models/torchscript.h"
#include "models/zoo.h"

namespace tightfit::models {

namespace {

graph::Shape& import_shape() {
  static graph::Shape shape;
  return shape;
}

struct FileLoader {
  const char* name;
  /// Whether this loader reads `path` (by its name or first bytes).
  bool (*reads)(const std::string& path);
  graph::Network (*load)(const std::string& path, const graph::Shape& input_shape);
};

// TorchScript archives are zip files; tightfit's own format reads any other file: it checks the
// magic and says what it found.
constexpr std::array<FileLoader, 2> kFileLoaders = {{
    {"torchscript", is_torchscript_file,
     [](const std::string& path, const graph::Shape& shape) {
       return import_torchscript(path, shape);
     }},
    {"tfn", [](const std::string&) { return true; },
     [](const std::string& path, const graph::Shape&) {
       check_readable_file(path, "model file",
                           "check the path (`tightfit train` or `tightfit compress` writes one)");
       if (!graph::has_network_magic(path))
         throw InputError("'" + path +
                          "' is neither a TorchScript file (from torch.jit.trace(model, x).save "
                          "or torch.jit.script(model).save) nor a tightfit network file (from "
                          "`tightfit train` or `tightfit compress`)");
       return graph::load_network(path);
     }},
}};

bool is_zoo_name(const std::string& spec) {
  const auto names = zoo_names();
  return std::find(names.begin(), names.end(), spec) != names.end();
}

}  // namespace

graph::Network load_model_file(const std::string& path, const graph::Shape& input_shape) {
  for (const FileLoader& l : kFileLoaders)
    if (l.reads(path))
      return l.load(path, input_shape.empty() ? import_input_shape() : input_shape);
  throw InputError("no loader reads the model file '" + path +
                   "'; loaders: " + join(model_loader_names()));
}

void check_model_spec(const std::string& spec) {
  if (!std::filesystem::exists(spec) && !is_zoo_name(spec))
    throw InputError(
        "'" + spec +
        "' is neither a network file nor a zoo model; valid zoo models: " + join(zoo_names()));
}

graph::Network load_model(const std::string& spec) {
  check_model_spec(spec);
  return std::filesystem::exists(spec) ? load_model_file(spec) : load_zoo_model(spec);
}

graph::Network load_zoo_model(const std::string& name) {
  return make_model(name, default_options(name));
}

void set_import_input_shape(graph::Shape shape) { import_shape() = std::move(shape); }

const graph::Shape& import_input_shape() { return import_shape(); }

graph::Shape parse_input_shape(const std::string& text, const std::string& what) {
  graph::Shape shape;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string part = text.substr(start, comma - start);
    char* end = nullptr;
    const long long v = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || v < 1 || v > (1 << 16))
      throw ConfigError(what + " is '" + text +
                        "'; give the per-sample input shape as C,H,W, e.g. 3,224,224");
    shape.push_back(v);
    start = comma + 1;
  }
  if (shape.size() != 3)
    throw ConfigError(what + " is '" + text +
                      "'; give the per-sample input shape as C,H,W, e.g. 3,224,224");
  return shape;
}

std::vector<std::string> model_loader_names() {
  std::vector<std::string> out;
  for (const FileLoader& l : kFileLoaders) out.emplace_back(l.name);
  out.emplace_back("zoo");
  return out;
}

}  // namespace tightfit::models
