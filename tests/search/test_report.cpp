#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/errors.h"
#include "search/report.h"

using namespace tightfit;
using nlohmann::json;

namespace {

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + needle.size()))
    ++n;
  return n;
}

json entry(int64_t index, const std::string& kind, double accuracy, double latency_ms,
           int64_t size_bytes,
           const json& policy = {{"keep", json::object()}, {"weight_bits", json::object()}}) {
  return {{"index", index},
          {"kind", kind},
          {"policy", policy},
          {"accuracy", accuracy},
          {"loss", 0.5},
          {"latency_ms", latency_ms},
          {"latency_spread_ms", 0.01},
          {"size_bytes", size_bytes},
          {"params", size_bytes / 4},
          {"flops", 1000000}};
}

/// A small run: baseline, two uniforms, five search evaluations (one failed), front of three.
struct Run {
  json doc;
  std::vector<json> evaluations;
};

Run small_run() {
  Run r;
  const json p1 = {{"keep", {{"features.0", 0.5}, {"features.4", 0.25}}},
                   {"weight_bits", {{"classifier.0", 8}}},
                   {"act_bits", {{"classifier.0", 8}}},
                   {"rank", {{"classifier.0", 0.5}}},
                   {"sparsity", {{"features.8", 0.4}}}};
  r.evaluations = {
      entry(-1, "baseline", 0.91, 1.0, 400000), entry(0, "uniform", 0.80, 0.5, 100000),
      entry(1, "uniform", 0.85, 0.7, 200000),   entry(2, "search", 0.83, 0.4, 90000, p1),
      entry(3, "search", 0.88, 0.6, 150000),    entry(4, "search", 0.70, 0.9, 350000),
      entry(5, "search", 0.90, 0.8, 300000),    entry(6, "search", 0, 0, 0)};
  r.evaluations.back()["error"] = "latency: the target failed";
  r.doc = {{"front", {r.evaluations[3], r.evaluations[4], r.evaluations[6]}},
           {"baseline", r.evaluations[0]},
           {"uniform", {r.evaluations[1], r.evaluations[2]}},
           {"context",
            {{"model", "runs/models/vgg_small.tfn"},
             {"target", "cpu-libtorch"},
             {"seed", 7},
             {"a_new_field", "shown-generically"}}}};
  return r;
}

std::filesystem::path temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("tightfit_report_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("report plots one dot per successful evaluation and marks the front",
          "[search][report]") {
  const Run r = small_run();
  const std::string html = search::render_report(r.doc, r.evaluations);
  // Seven successful evaluations, in each of the two charts; the failed one is listed instead.
  CHECK(count(html, "<circle class=\"ev\"") == 2 * 7);
  CHECK(count(html, "<circle class=\"front\"") == 2 * 3);
  CHECK(count(html, "<polygon class=\"uniform\"") == 2 * 2);
  CHECK(count(html, "<polygon class=\"baseline\"") == 2);
  CHECK(count(html, "<path class=\"step\"") == 2);
  CHECK(html.find("1 failed evaluation(s)") != std::string::npos);
  CHECK(html.find("latency: the target failed") != std::string::npos);
  // The front table and one policy card per member.
  CHECK(count(html, "<div class=\"card\" id=\"m") == 3);
  CHECK(html.find("88.00%") != std::string::npos);
  // Per-layer policy: keep bars, bits, rank and sparsity badges.
  CHECK(html.find("width:25.0%") != std::string::npos);
  CHECK(html.find("W 8") != std::string::npos);
  CHECK(html.find("A 8") != std::string::npos);
  CHECK(html.find("rank 0.5") != std::string::npos);
  CHECK(html.find("sparse 40%") != std::string::npos);
  // Context keys, known and unknown.
  CHECK(html.find("cpu-libtorch") != std::string::npos);
  CHECK(html.find("a_new_field") != std::string::npos);
  CHECK(html.find("shown-generically") != std::string::npos);
}

TEST_CASE("report escapes every text it prints", "[search][report]") {
  Run r = small_run();
  const json evil = {{"keep", {{"<script>alert(1)</script>", 0.5}}},
                     {"weight_bits", {{"a\"b&c", 8}}}};
  r.doc["front"][0]["policy"] = evil;
  r.doc["context"]["model"] = "<img src=x onerror=alert(1)>";
  r.evaluations[7]["error"] = "<b>bad</b>";
  const std::string html = search::render_report(r.doc, r.evaluations);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("<img") == std::string::npos);
  CHECK(html.find("a&quot;b&amp;c") != std::string::npos);
  CHECK(html.find("<b>bad</b>") == std::string::npos);
}

TEST_CASE("report references nothing outside the page", "[search][report]") {
  Run r = small_run();
  const std::string plain = search::render_report(r.doc, r.evaluations);
  CHECK(plain.find("http://") == std::string::npos);
  CHECK(plain.find("https://") == std::string::npos);
  CHECK(plain.find("src=") == std::string::npos);
  // A URL the user wrote is shown as text, never as a link or a resource.
  r.doc["context"]["notes"] = "weights from https://example.org/w.tfn";
  const std::string html = search::render_report(r.doc, r.evaluations);
  CHECK(count(html, "https://") == 1);
  CHECK(html.find("href=\"https://") == std::string::npos);
}

TEST_CASE("report renders an empty front and budget answers", "[search][report]") {
  Run r = small_run();
  r.doc["front"] = json::array();
  std::string html = search::render_report(r.doc, {});
  CHECK(html.find("The front is empty") != std::string::npos);
  CHECK(count(html, "<circle class=\"ev\"") == 0);
  CHECK(html.find("</html>") != std::string::npos);
  // Nothing at all to plot.
  html = search::render_report(json{{"front", json::array()}}, {});
  CHECK(html.find("no successful evaluations to plot") != std::string::npos);

  // The controller's shape: best = {budget, met, best | closest}.
  r = small_run();
  r.doc["best"] = {{"budget", {{"latency_ms", 0.65}}}, {"met", true}, {"best", r.evaluations[4]}};
  html = search::render_report(r.doc, r.evaluations);
  CHECK(html.find("Best under budget") != std::string::npos);
  CHECK(html.find("latency_ms 0.65") != std::string::npos);
  r.doc["best"] = {{"budget", {{"latency_ms", 0.1}}},
                   {"met", false},
                   {"closest", r.evaluations[3]},
                   {"closest_excess", 3.0}};
  html = search::render_report(r.doc, r.evaluations);
  CHECK(html.find("Budget not met") != std::string::npos);
  CHECK(html.find("closest: ") != std::string::npos);
  CHECK(html.find("300.0%") != std::string::npos);
  // A top-level budget object that was missed.
  r.doc.erase("best");
  r.doc["budget"] = {{"size_bytes", 1000}, {"met", false}, {"closest", r.evaluations[3]}};
  html = search::render_report(r.doc, r.evaluations);
  CHECK(html.find("Budget not met") != std::string::npos);
  CHECK(html.find("size_bytes 1000") != std::string::npos);
}

TEST_CASE("write_report reads a run folder, tolerating a torn last journal line",
          "[search][report]") {
  const Run r = small_run();
  const auto dir = temp_dir("torn");
  write_file(dir / "front.json", r.doc.dump(2));
  std::string journal = json{{"format", "tightfit-search-journal"}, {"version", 1}}.dump() + "\n";
  for (const auto& e : r.evaluations) journal += e.dump() + "\n";
  write_file(dir / "evaluations.jsonl", journal + "{\"index\": 9, \"kind\": \"sea");  // torn
  search::write_report(dir.string());
  const std::string html = read_file(dir / "report.html");
  CHECK(count(html, "<circle class=\"ev\"") == 2 * 7);  // header and torn line left out
  CHECK_FALSE(std::filesystem::exists(dir / "report.html.tmp"));
  CHECK(search::read_journal_lines((dir / "evaluations.jsonl").string()).size() ==
        r.evaluations.size());

  // A damaged line before the last one is a user-facing error, as are missing files.
  write_file(dir / "evaluations.jsonl", "{\"index\": 1\n" + journal);
  CHECK_THROWS_AS(search::write_report(dir.string()), InputError);
  write_file(dir / "front.json", "{\"front\": [");
  CHECK_THROWS_AS(search::write_report(dir.string()), InputError);
  std::filesystem::remove(dir / "front.json");
  CHECK_THROWS_AS(search::write_report(dir.string()), InputError);
  CHECK_THROWS_AS(search::write_report((dir / "nope").string()), InputError);
  std::filesystem::remove_all(dir);
}
