// Strict JSON reading: syntax errors point at the line and column of the offending character,
// unknown keys list the valid ones, and type errors name the key.

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "core/errors.h"
#include "core/json.h"

using tightfit::check_keys;
using tightfit::ConfigError;
using tightfit::parse_json_text;

namespace {

/// The message of the ConfigError that parsing `text` throws.
std::string parse_error(const std::string& text) {
  try {
    parse_json_text(text, "cfg.json");
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("no ConfigError for: " << text);
  return "";
}

}  // namespace

TEST_CASE("malformed JSON reports where:LINE:COL of the offending character", "[graph][json]") {
  // Column of the stray '}' on line 2: ` "b": }` -> 7.
  CHECK_THAT(parse_error("{\"a\": 1,\n \"b\": }"), Catch::StartsWith("cfg.json:2:7: malformed"));
  // First character of the file.
  CHECK_THAT(parse_error("]"), Catch::StartsWith("cfg.json:1:1:"));
  // A token of several characters is reported at its last character (as nlohmann's own
  // "line, column" does): a missing comma before "b" (columns 3-5 of line 3) gives column 5.
  CHECK_THAT(parse_error("{\n  \"a\": 1\n  \"b\": 2\n}"), Catch::StartsWith("cfg.json:3:5:"));
  // Trailing comma before the closing brace on line 4.
  CHECK_THAT(parse_error("{\n\"a\": [1, 2],\n\"b\": 3,\n}"), Catch::StartsWith("cfg.json:4:1:"));
  // Garbage after the document, on the same line.
  CHECK_THAT(parse_error("{} x"), Catch::StartsWith("cfg.json:1:4:"));
  // The message keeps nlohmann's description and says how to fix it.
  const std::string msg = parse_error("{\"a\": 1,\n \"b\": }");
  CHECK_THAT(msg, Catch::Contains("syntax error"));
  CHECK_THAT(msg, Catch::Contains("fix the file at that position"));
  // Valid text parses.
  CHECK(parse_json_text("{\"a\": [1, 2]}", "x").at("a").size() == 2);
}

TEST_CASE("read_json_file reports missing files and positions in the file", "[graph][json]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("tightfit_test_json_util_" + std::to_string(std::random_device()()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "bad.json").string();
  {
    std::ofstream out(path);
    out << "{\n  \"x\": tru\n}\n";
  }
  REQUIRE_THROWS_AS(tightfit::read_json_file(path), ConfigError);
  REQUIRE_THROWS_WITH(tightfit::read_json_file(path), Catch::StartsWith(path + ":2:"));
  const std::string missing = (dir / "missing.json").string();
  REQUIRE_THROWS_WITH(tightfit::read_json_file(missing),
                      Catch::Contains("cannot open '" + missing + "'"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("check_keys lists the valid keys", "[graph][json]") {
  const auto j = nlohmann::json::parse(R"({"keep": {}, "weight_bitz": {}})");
  REQUIRE_THROWS_AS(check_keys(j, {"keep", "weight_bits"}, "policy"), ConfigError);
  REQUIRE_THROWS_WITH(check_keys(j, {"keep", "weight_bits"}, "policy"),
                      Catch::Contains("unknown key 'weight_bitz' in policy") &&
                          Catch::Contains("valid keys: keep, weight_bits"));
  CHECK_NOTHROW(check_keys(j, {"keep", "weight_bitz", "other"}, "policy"));
  REQUIRE_THROWS_WITH(check_keys(nlohmann::json::array(), {"a"}, "search"),
                      Catch::Contains("search must be a JSON object, not array"));
}

TEST_CASE("get_or and get_required name the key", "[graph][json]") {
  const auto j = nlohmann::json::parse(R"({"n": 3, "s": "x"})");
  CHECK(tightfit::get_or<int>(j, "n", 7, "cfg") == 3);
  CHECK(tightfit::get_or<int>(j, "m", 7, "cfg") == 7);
  REQUIRE_THROWS_AS(tightfit::get_or<int>(j, "s", 7, "cfg"), ConfigError);
  REQUIRE_THROWS_WITH(tightfit::get_or<int>(j, "s", 7, "cfg"),
                      Catch::Contains("cfg.s must be an integer, not string"));
  REQUIRE_THROWS_WITH(tightfit::get_or<std::string>(j, "n", "", "cfg"),
                      Catch::Contains("cfg.n has the wrong type (number)"));
  CHECK(tightfit::get_required<std::string>(j, "s", "cfg") == "x");
  REQUIRE_THROWS_WITH(tightfit::get_required<int>(j, "q", "cfg"),
                      Catch::Contains("cfg.q is missing"));
  CHECK(tightfit::join({"a", "b", "c"}) == "a, b, c");
  CHECK(tightfit::join({}) == "");
  CHECK(tightfit::join({"a", "b"}, "|") == "a|b");
}

TEST_CASE("numbers are taken only as what they are: no rounding, wrapping or overflow",
          "[core][json]") {
  using tightfit::get_or;
  const auto j = tightfit::parse_json_text(
      R"({"neg": -1, "frac": 2.7, "whole": 2.0, "huge": 1e30, "big": 18446744073709551615,
          "int_max": 2147483648, "flag": 1, "ok": 0.5})",
      "cfg");
  // A negative seed does not become 2^64 - 1.
  REQUIRE_THROWS_WITH(get_or<uint64_t>(j, "neg", 0, "cfg"),
                      Catch::Contains("cfg.neg is -1") && Catch::Contains("cannot be negative"));
  // 2.7 does not run as 2; 2.0 is the integer 2.
  REQUIRE_THROWS_WITH(get_or<int64_t>(j, "frac", 0, "cfg"),
                      Catch::Contains("cfg.frac must be an integer, not 2.7"));
  CHECK(get_or<int64_t>(j, "whole", 0, "cfg") == 2);
  // 1e30 does not become 0, and 2^31 does not wrap in an int.
  REQUIRE_THROWS_WITH(get_or<int64_t>(j, "huge", 0, "cfg"), Catch::Contains("cfg.huge is 1e+30"));
  REQUIRE_THROWS_AS(get_or<int>(j, "int_max", 0, "cfg"), ConfigError);
  CHECK(get_or<int64_t>(j, "int_max", 0, "cfg") == 2147483648LL);
  // The largest seed is written as such.
  CHECK(get_or<uint64_t>(j, "big", 0, "cfg") == 18446744073709551615ULL);
  REQUIRE_THROWS_AS(get_or<int64_t>(j, "big", 0, "cfg"), ConfigError);
  // A number is not a boolean.
  REQUIRE_THROWS_WITH(get_or<bool>(j, "flag", false, "cfg"),
                      Catch::Contains("cfg.flag must be true or false"));
  CHECK(get_or<double>(j, "ok", 0.0, "cfg") == 0.5);
}

TEST_CASE("a JSON text with a key twice in one object, or a number no double holds, is refused",
          "[core][json]") {
  using tightfit::parse_json_text;
  REQUIRE_THROWS_WITH(
      parse_json_text("{\"seed\": 1,\n \"seed\": 2}", "c.json"),
      Catch::StartsWith("c.json:2:") && Catch::Contains("key 'seed' appears twice"));
  REQUIRE_THROWS_WITH(
      parse_json_text(R"({"a": {"x": 1}, "b": {"x": 2, "y": {"x": 3, "x": 4}}})", "c.json"),
      Catch::Contains("key 'x' appears twice"));
  // The same key in sibling objects and in arrays of objects is fine.
  CHECK(
      parse_json_text(R"({"a": {"x": 1}, "b": {"x": 2}, "c": [{"x": 1}, {"x": 2}]})", "c").size() ==
      3);
  REQUIRE_THROWS_AS(parse_json_text(R"({"a": 1e999})", "c.json"), ConfigError);
  REQUIRE_THROWS_WITH(parse_json_text(R"({"a": 1e999})", "c.json"),
                      Catch::StartsWith("c.json:1:") && Catch::Contains("1e999"));
}
