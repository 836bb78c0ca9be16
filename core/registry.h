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
#include <type_traits>
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

/// The registry of one kind, built once (thread-safe) by `register_builtins`, the kind's explicit
/// list of built-in plugins.
template <typename Product, typename Context>
const Registry<Product, Context>& builtin_registry(
    const char* kind, const char* plural, void (*register_builtins)(Registry<Product, Context>&)) {
  static const Registry<Product, Context> r = [&] {
    Registry<Product, Context> built(kind, plural);
    register_builtins(built);
    return built;
  }();
  return r;
}

/// The same shape for plugins that are plain entries rather than configured objects (pruning
/// criteria, quantizer schemes: a function and its traits): a fixed list in the kind's registry
/// file, searched by name, with the same rules (duplicates are a bug, a miss lists the names).
/// `Entry` has a `name` member (or points to something that has one).
template <typename Entry>
class EntryTable {
 public:
  EntryTable(std::string kind, std::string plural, std::vector<Entry> entries)
      : kind_(std::move(kind)), plural_(std::move(plural)), entries_(std::move(entries)) {
    for (size_t i = 0; i < entries_.size(); ++i)
      for (size_t k = 0; k < i; ++k)
        TIGHTFIT_CHECK(name_of(entries_[i]) != name_of(entries_[k]),
                       "two " << plural_ << " named '" << name_of(entries_[i]) << "'");
  }

  /// The entry named `name`, or nullptr.
  const Entry* find(const std::string& name) const {
    for (const Entry& e : entries_)
      if (name == name_of(e)) return &e;
    return nullptr;
  }

  /// The entry named `name`; ConfigError listing the valid names on a miss.
  const Entry& at(const std::string& name) const {
    if (const Entry* e = find(name)) return *e;
    throw ConfigError("unknown " + kind_ + " '" + name + "'; valid " + plural_ + ": " +
                      join(names()));
  }

  /// The names, in the order listed.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const Entry& e : entries_) out.emplace_back(name_of(e));
    return out;
  }

  const std::vector<Entry>& entries() const { return entries_; }

 private:
  static std::string name_of(const Entry& e) {
    if constexpr (std::is_pointer_v<Entry>)
      return e->name;
    else
      return e.name;
  }
  std::string kind_, plural_;
  std::vector<Entry> entries_;
};

}  // namespace tightfit
