#include "core/json.h"

#include <cmath>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <vector>

#include "core/files.h"

namespace tightfit {

namespace {

/// Line and column of byte `offset` in `text`, both from 1.
std::pair<size_t, size_t> line_column(const std::string& text, size_t offset) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

/// A character iterator that records how far the parser has read, so that a duplicate key
/// found by the parser's callback can be reported at its line.
struct TrackedChars {
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  const char* p;
  const char* begin;
  size_t* read;

  reference operator*() const { return *p; }
  TrackedChars& operator++() {
    ++p;
    *read = static_cast<size_t>(p - begin);
    return *this;
  }
  TrackedChars operator++(int) {
    TrackedChars before = *this;
    ++*this;
    return before;
  }
  bool operator==(const TrackedChars& o) const { return p == o.p; }
  bool operator!=(const TrackedChars& o) const { return p != o.p; }
};

}  // namespace

nlohmann::json parse_json_text(const std::string& text, const std::string& where) {
  size_t read = 0;
  std::vector<std::set<std::string>> open_objects;
  const auto on_event = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) {
      open_objects.emplace_back();
    } else if (event == E::object_end) {
      open_objects.pop_back();
    } else if (event == E::key && !open_objects.empty()) {
      const std::string key = parsed.get<std::string>();
      if (!open_objects.back().insert(key).second) {
        const auto [line, column] = line_column(text, read);
        throw ConfigError(where + ":" + std::to_string(line) + ":" + std::to_string(column) +
                          ": key '" + key +
                          "' appears twice in one object; keep only the value you mean");
      }
    }
    return true;
  };
  const TrackedChars first{text.data(), text.data(), &read};
  const TrackedChars last{text.data() + text.size(), text.data(), &read};
  try {
    return nlohmann::json::parse(first, last, on_event);
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann reports a byte offset; people fix files by line and column.
    const auto [line, column] = line_column(text, e.byte == 0 ? 0 : e.byte - 1);
    std::string what = e.what();
    const auto pos = what.find("syntax error");
    if (pos != std::string::npos) what = what.substr(pos);
    throw ConfigError(where + ":" + std::to_string(line) + ":" + std::to_string(column) +
                      ": malformed JSON (" + what + "); fix the file at that position");
  } catch (const nlohmann::json::out_of_range& e) {  // a number no double holds, e.g. 1e999
    const auto [line, column] = line_column(text, read);
    std::string what = e.what();
    const auto pos = what.find("number overflow");
    if (pos != std::string::npos) what = what.substr(pos);
    throw ConfigError(where + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " +
                      what + " (no double holds it); write a smaller number");
  }
}

namespace detail {

void check_integer(const nlohmann::json& v, long double min, long double max,
                   const std::string& name) {
  if (!v.is_number())
    throw ConfigError(name + " must be an integer, not " + std::string(v.type_name()));
  long double x = 0;
  if (v.is_number_unsigned()) {
    x = static_cast<long double>(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    x = static_cast<long double>(v.get<int64_t>());
  } else {
    const double d = v.get<double>();
    if (!std::isfinite(d) || d != std::floor(d))
      throw ConfigError(name + " must be an integer, not " + v.dump());
    x = static_cast<long double>(d);
  }
  if (x < min || x > max) {
    std::ostringstream os;
    os << name << " is " << v.dump() << ", outside the integers it can hold ("
       << static_cast<long long>(min) << " to " << static_cast<unsigned long long>(max) << ")";
    if (min == 0 && x < 0) os << "; it cannot be negative";
    throw ConfigError(os.str());
  }
}

void check_number(const nlohmann::json& v, const std::string& name) {
  if (!v.is_number())
    throw ConfigError(name + " must be a number, not " + std::string(v.type_name()));
  if (!std::isfinite(v.get<double>()))
    throw ConfigError(name + " is not a finite number (" + v.dump() +
                      "); write a value a double holds");
}

}  // namespace detail

nlohmann::json read_json_file(const std::string& path) {
  return parse_json_text(read_whole_file(path, "", "check the path"), path);
}

void check_keys(const nlohmann::json& j, const std::vector<std::string>& valid,
                const std::string& where) {
  if (!j.is_object())
    throw ConfigError(where + " must be a JSON object, not " + std::string(j.type_name()));
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool ok = false;
    for (const auto& v : valid) ok = ok || v == it.key();
    if (!ok)
      throw ConfigError("unknown key '" + it.key() + "' in " + where +
                        "; valid keys: " + join(valid));
  }
}

std::string join(const std::vector<std::string>& names, const std::string& sep) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : sep) + n;
  return out;
}

}  // namespace tightfit
