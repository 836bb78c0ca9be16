#pragma once
// Strict JSON reading for configs, policies and journals (STYLE.md 3): unknown keys are errors
// that list the valid ones, type errors name the key, and malformed files report line and column.

#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/errors.h"

namespace tightfit {

/// Parses a JSON file; a missing file or a syntax error throws ConfigError with the path and, for
/// syntax errors, the line and column.
nlohmann::json read_json_file(const std::string& path);

/// Parses JSON text; `where` names its origin in error messages. A key that appears twice in one
/// object is an error naming the key and its line (nlohmann would keep the last value silently).
nlohmann::json parse_json_text(const std::string& text, const std::string& where);

/// Throws ConfigError if `j` is not an object or has a key outside `valid`.
void check_keys(const nlohmann::json& j, const std::vector<std::string>& valid,
                const std::string& where);

namespace detail {
/// ConfigError unless `v` is a whole number that `min`..`max` holds (an integral float such as
/// 2.0 counts; 2.7, 1e30 and -1 for an unsigned do not).
void check_integer(const nlohmann::json& v, long double min, long double max,
                   const std::string& name);
/// ConfigError unless `v` is a finite number.
void check_number(const nlohmann::json& v, const std::string& name);

template <typename T>
struct is_number_list : std::false_type {};
template <typename T>
struct is_number_list<std::vector<T>> : std::is_arithmetic<T> {};
}  // namespace detail

/// `v` as T, strictly: an integer type takes only a whole number in its range, a floating type
/// only a finite number, a vector of numbers a list of such numbers or one number (a list of
/// one), and any other type converts as nlohmann does; `name` (e.g. "config.seed") names the
/// value in the ConfigError.
template <typename T>
T json_value(const nlohmann::json& v, const std::string& name) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean())
      throw ConfigError(name + " must be true or false, not " + std::string(v.type_name()));
    return v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    detail::check_integer(v, static_cast<long double>(std::numeric_limits<T>::min()),
                          static_cast<long double>(std::numeric_limits<T>::max()), name);
    return v.is_number_float() ? static_cast<T>(v.get<double>()) : v.get<T>();
  } else if constexpr (std::is_floating_point_v<T>) {
    detail::check_number(v, name);
    return v.get<T>();
  } else if constexpr (detail::is_number_list<T>::value) {
    if (!v.is_array()) return T{json_value<typename T::value_type>(v, name)};
    T out;
    for (size_t i = 0; i < v.size(); ++i)
      out.push_back(json_value<typename T::value_type>(v[i], name + "[" + std::to_string(i) + "]"));
    return out;
  } else {
    try {
      return v.get<T>();
    } catch (const nlohmann::json::exception&) {
      throw ConfigError(name + " has the wrong type (" + v.type_name() +
                        "); see the example configs in examples/");
    }
  }
}

/// `j[key]` as T (json_value's strict conversion), or `fallback` when absent.
template <typename T>
T get_or(const nlohmann::json& j, const std::string& key, const T& fallback,
         const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  return json_value<T>(*it, where + "." + key);
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
