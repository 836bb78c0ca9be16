#include "core/json.h"

#include <fstream>
#include <sstream>

namespace tightfit {

nlohmann::json parse_json_text(const std::string& text, const std::string& where) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann reports a byte offset; people fix files by line and column.
    const size_t byte = e.byte == 0 ? 0 : e.byte - 1;
    size_t line = 1, column = 1;
    for (size_t i = 0; i < byte && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = e.what();
    const auto pos = what.find("syntax error");
    if (pos != std::string::npos) what = what.substr(pos);
    throw ConfigError(where + ":" + std::to_string(line) + ":" + std::to_string(column) +
                      ": malformed JSON (" + what + "); fix the file at that position");
  }
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot open '" + path + "': check the path");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_json_text(ss.str(), path);
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
