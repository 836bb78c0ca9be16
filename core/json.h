#pragma once
// Strict JSON reading for configs, policies and journals (STYLE.md 3): unknown keys are errors
// that list the valid ones, type errors name the key, and malformed files report line and column.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/errors.h"

namespace tightfit {

/// Parses a JSON file; a missing file or a syntax error throws ConfigError with the path and, for
/// syntax errors, the line and column.
nlohmann::json read_json_file(const std::string& path);

/// Parses JSON text; `where` names its origin in error messages.
nlohmann::json parse_json_text(const std::string& text, const std::string& where);

/// Throws ConfigError if `j` is not an object or has a key outside `valid`.
void check_keys(const nlohmann::json& j, const std::vector<std::string>& valid,
                const std::string& where);

/// `j[key]` as T, or `fallback` when absent; a wrong type throws ConfigError naming where.key.
template <typename T>
T get_or(const nlohmann::json& j, const std::string& key, const T& fallback,
         const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw ConfigError(where + "." + key + " has the wrong type (" + it->type_name() +
                      "); see the example configs in examples/");
  }
}

/// Like get_or, but the key must be present.
template <typename T>
T get_required(const nlohmann::json& j, const std::string& key, const std::string& where) {
  if (!j.contains(key))
    throw ConfigError(where + "." + key + " is missing; add it (see examples/)");
  return get_or<T>(j, key, T{}, where);
}

/// Joins names with ", " for "valid values are ..." messages.
std::string join(const std::vector<std::string>& names, const std::string& sep = ", ");

}  // namespace tightfit
