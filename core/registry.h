#pragma once
// One registry shape for every kind of plugin (strategies, evaluators, targets, cost models):
// names to factories, each factory taking its own JSON config section and one context object of
// its kind, so a plugin that needs something new extends the context, not every factory's
// signature. Built-ins are added by an explicit call in the kind's registry file (static
// self-registration is dropped by the linker from static libraries); a duplicate name is a bug,
// and an unknown one a ConfigError that lists the known names (as Halide's find_autoscheduler).

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/json.h"

namespace tightfit {

template <typename Product, typename Context>
class Registry {
 public:
  using Factory =
      std::function<std::unique_ptr<Product>(const nlohmann::json& section, const Context&)>;

  /// `kind` and `plural` name the plugins in messages ("strategy", "strategies").
  Registry(std::string kind, std::string plural)
      : kind_(std::move(kind)), plural_(std::move(plural)) {}

  Registry& add(const std::string& name, Factory factory) {
    TIGHTFIT_CHECK(!factories_.count(name), "two " << plural_ << " named '" << name << "'");
    factories_.emplace(name, std::move(factory));
    return *this;
  }

  bool contains(const std::string& name) const { return factories_.count(name) > 0; }

  /// The registered names, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, f] : factories_) out.push_back(name);
    return out;
  }

  /// Builds `name` from its config section; ConfigError listing the valid names on a miss.
  std::unique_ptr<Product> make(const std::string& name, const nlohmann::json& section,
                                const Context& context) const {
    const auto it = factories_.find(name);
    if (it == factories_.end())
      throw ConfigError("unknown " + kind_ + " '" + name + "'; valid " + plural_ + ": " +
                        join(names()));
    return it->second(section, context);
  }

 private:
  std::string kind_, plural_;
  std::map<std::string, Factory> factories_;
};

}  // namespace tightfit
