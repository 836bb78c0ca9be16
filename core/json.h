#pragma once
// Strict JSON reading for configs, policies and journals (STYLE.md 3): unknown keys are errors
// that list the valid ones, type errors name the key, and malformed files report line and column.

#include <nlohmann/json.hpp>
#include <optional>
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

// Config sections written once. A config struct lists its keys and members in one template
// member,
//
//   template <typename Fields> void fields(Fields& f) {
//     f("bn_batches", bn_batches);  // key, member: the struct's default is the key's default
//     f("threads", threads);
//   }
//
// and read_section / write_section / section_keys derive everything else from that list:
// unknown keys are rejected with the valid ones listed in this order, a wrong type names the
// key, and to_json writes the same keys back. Range checks stay in the struct's from_json.

/// Collects the keys a `fields` list names.
struct SectionKeys {
  std::vector<std::string> names;
  template <typename T>
  void operator()(const char* key, const T&) {
    names.emplace_back(key);
  }
};

/// Reads each listed key that `j` holds into its member (get_or's type check).
struct SectionReader {
  const nlohmann::json& j;
  const std::string& where;
  template <typename T>
  void operator()(const char* key, T& member) {
    member = get_or<T>(j, key, member, where);
  }
  /// An optional member is set only when its key is present.
  template <typename T>
  void operator()(const char* key, std::optional<T>& member) {
    if (j.contains(key)) member = get_or<T>(j, key, T{}, where);
  }
};

/// Writes each listed member under its key.
struct SectionWriter {
  nlohmann::json j = nlohmann::json::object();
  template <typename T>
  void operator()(const char* key, const T& member) {
    j[key] = member;
  }
  template <typename T>
  void operator()(const char* key, const std::optional<T>& member) {
    if (member) j[key] = *member;
  }
};

/// The keys `Config::fields` lists, in order.
template <typename Config>
std::vector<std::string> section_keys() {
  Config c;
  SectionKeys keys;
  c.fields(keys);
  return keys.names;
}

/// `Config` from section `j` (null: the defaults): unknown keys rejected first, then each
/// listed key read over its default.
template <typename Config>
Config read_section(const nlohmann::json& j, const std::string& where) {
  Config c;
  if (j.is_null()) return c;
  check_keys(j, section_keys<Config>(), where);
  SectionReader reader{j, where};
  c.fields(reader);
  return c;
}

/// read_section over the defaults in `base` instead of Config's own (e.g. the defaults of files
/// written before a key existed).
template <typename Config>
Config read_section(const nlohmann::json& j, const std::string& where, Config base) {
  if (j.is_null()) return base;
  check_keys(j, section_keys<Config>(), where);
  SectionReader reader{j, where};
  base.fields(reader);
  return base;
}

/// The listed members of `c` as a JSON object.
template <typename Config>
nlohmann::json write_section(const Config& c) {
  Config copy = c;  // fields() is one list for reading and writing, so it takes the struct mutably
  SectionWriter writer;
  copy.fields(writer);
  return writer.j;
}

/// Joins names with ", " for "valid values are ..." messages.
std::string join(const std::vector<std::string>& names, const std::string& sep = ", ");

}  // namespace tightfit
