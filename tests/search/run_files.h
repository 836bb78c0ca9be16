#pragma once
// Reading a search run's files in tests that drive the real `tightfit search`.

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tightfit::test {

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// Every line of a journal (evaluations.jsonl), the header included, as JSON.
inline std::vector<nlohmann::json> journal_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

/// What a run decided: an evaluation's JSON without the figures that depend on the moment (wall
/// times, end-to-end measurements of the front), and without `also` (e.g. accuracies).
inline nlohmann::json decisions(nlohmann::json j, const std::vector<std::string>& also = {}) {
  for (const char* key : {"eval_seconds", "cached", "measured_latency_ms", "latency_spread_ms"})
    j.erase(key);
  for (const auto& key : also) j.erase(key);
  return j;
}

}  // namespace tightfit::test
