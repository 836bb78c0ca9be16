// The target registry. A new backend is one file under targets/ and one line in
// register_builtin_targets().

#include "core/registry.h"

#include <algorithm>

#include "targets/libtorch_cpu.h"
#include "targets/onednn_cpu.h"

namespace tightfit::targets {

namespace {

using TargetRegistry = Registry<Target, TargetContext>;

/// The factory of a target without settings of its own (its section must be empty).
template <typename T>
TargetRegistry::Factory plain(const std::string& name) {
  return [name](const nlohmann::json& j, const TargetContext&) -> std::unique_ptr<Target> {
    check_keys(j, {}, "target " + name);
    return std::make_unique<T>();
  };
}

void register_builtin_targets(TargetRegistry& r) {
  r.add("cpu-libtorch", plain<LibTorchCpuTarget>("cpu-libtorch"));
  r.add("cpu-onednn", plain<OneDnnCpuTarget>("cpu-onednn"));
}

const TargetRegistry& registry() {
  return builtin_registry("target", "targets", register_builtin_targets);
}

}  // namespace

std::vector<std::string> target_names() { return registry().names(); }

void require_precision(const Target& target, const std::string& precision) {
  const auto precisions = target.capabilities().precisions;
  if (std::find(precisions.begin(), precisions.end(), precision) == precisions.end())
    throw ConfigError("target '" + target.name() + "' does not run precision '" + precision +
                      "'; it runs: " + join(precisions));
}

std::unique_ptr<Target> make_target(const std::string& name, const nlohmann::json& section,
                                    const TargetContext& context) {
  return registry().make(name, section, context);
}

}  // namespace tightfit::targets
