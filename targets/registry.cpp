// The target registry: names to factories, listed explicitly (no static self-registration).

#include <algorithm>
#include <functional>
#include <map>

#include "core/json.h"
#include "targets/analytic.h"
#include "targets/libtorch_cpu.h"
#include "targets/onednn_cpu.h"

namespace tightfit::targets {

namespace {
const std::map<std::string, std::function<std::unique_ptr<Target>()>>& registry() {
  static const std::map<std::string, std::function<std::unique_ptr<Target>()>> r = {
      {"cpu-libtorch", [] { return std::make_unique<LibTorchCpuTarget>(); }},
      {"cpu-onednn", [] { return std::make_unique<OneDnnCpuTarget>(); }},
      {"analytic-roofline", [] { return std::make_unique<RooflineTarget>(); }},
      {"analytic-bitfusion", [] { return std::make_unique<BitFusionTarget>(); }},
  };
  return r;
}
}  // namespace

std::vector<std::string> target_names() {
  std::vector<std::string> names;
  for (const auto& [name, f] : registry()) names.push_back(name);
  return names;
}

void require_precision(const Target& target, const std::string& precision) {
  const auto precisions = target.capabilities().precisions;
  if (std::find(precisions.begin(), precisions.end(), precision) == precisions.end())
    throw ConfigError("target '" + target.name() + "' does not run precision '" + precision +
                      "'; it runs: " + join(precisions));
}

std::unique_ptr<Target> make_target(const std::string& name) {
  auto it = registry().find(name);
  if (it == registry().end())
    throw ConfigError("unknown target '" + name + "'; valid targets: " + join(target_names()));
  return it->second();
}

}  // namespace tightfit::targets
