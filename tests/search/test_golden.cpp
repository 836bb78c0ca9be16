// The search as a whole, against the record of an earlier version: a small joint search (channels,
// weight and activation bits; random strategy; lookup-table latency from a committed table; BN
// recalibration scored two candidates at a time) must journal the same evaluations and write the
// same front and best candidate as the run recorded in tests/search/fixtures/golden/, which the
// version before the search centre was reorganized wrote. A refactoring that changes what the
// search decides or scores fails here.
//
// The recorded accuracies were measured on one CPU; on another, floating-point sums can round a
// few validation images the other way. There the accuracies must agree within a few images, and
// the front and best candidate (which accuracies decide) are compared only where every accuracy
// agrees exactly. Policies and table latencies never depend on the CPU.
//
// TIGHTFIT_GOLDEN_WRITE=1 records the fixture anew (after a deliberate change of behaviour).

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "run_files.h"

namespace fs = std::filesystem;
using tightfit::test::journal_lines;
using tightfit::test::read_file;

namespace {

/// What a run decided and scored: its accuracies are compared apart, with a tolerance.
nlohmann::json decisions(const nlohmann::json& j) {
  // int8_layers: what runs in int8 depends on the CPU (VNNI or not), not on the decisions.
  return tightfit::test::decisions(j, {"accuracy", "loss", "int8_layers"});
}

const fs::path kFixture = fs::path(TIGHTFIT_SOURCE_DIR) / "tests/search/fixtures/golden";
constexpr int kValidationImages = 256;

/// Runs `tightfit search` and returns its exit status; output goes to `log`.
int run_search(const fs::path& config, const fs::path& out, const fs::path& log) {
  const std::string cmd = std::string(TIGHTFIT_CLI) + " search --config '" + config.string() +
                          "' --out '" + out.string() + "' >'" + log.string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string cpu_model() {
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

nlohmann::json golden_config(const fs::path& table) {
  return {{"seed", 13},
          {"model", {{"zoo", "vgg_small"}}},
          {"data", {{"validation_count", 5000}}},
          {"space",
           {{"keep", {0.25, 0.5, 0.75, 1.0}},
            {"weight_bits", {32, 8}},
            {"act_bits", {32, 8}},
            {"channel_multiple", 8}}},
          {"strategy", {{"name", "random"}, {"evaluations", 12}, {"ask_batch", 3}}},
          {"evaluator",
           {{"name", "bn-recal"},
            {"bn_batches", 2},
            {"batch_size", 64},
            {"validation_images", kValidationImages},
            {"threads", 1},
            {"parallel", 2}}},
          {"target", {{"name", "cpu-onednn"}, {"threads", 1}, {"min_time_ms", 5}}},
          {"cost", {{"latency", "lut"}, {"table", table.string()}}},
          {"budget", {{"latency_ms", 0.1}, {"size_bytes", 400000}}},
          {"baselines", {{"keep", {0.5}}}}};
}

}  // namespace

TEST_CASE("a small joint search decides and scores as the recorded run did", "[search][golden]") {
  const fs::path dir =
      fs::temp_directory_path() / ("tightfit_golden_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const bool write = std::getenv("TIGHTFIT_GOLDEN_WRITE") != nullptr;
  // The table is copied: a run must never depend on writing into the source tree.
  const fs::path table = dir / "lut.json";
  if (fs::exists(kFixture / "lut.json")) fs::copy_file(kFixture / "lut.json", table);
  REQUIRE((write || fs::exists(table)));
  std::ofstream(dir / "config.json") << golden_config(table).dump(2);

  const fs::path out = dir / "run";
  const int status = run_search(dir / "config.json", out, dir / "search.log");
  INFO(read_file(dir / "search.log"));
  REQUIRE(status == 0);

  if (write) {
    fs::create_directories(kFixture);
    fs::copy_file(table, kFixture / "lut.json", fs::copy_options::overwrite_existing);
    for (const char* f : {"evaluations.jsonl", "front.json", "best.json"})
      fs::copy_file(out / f, kFixture / f, fs::copy_options::overwrite_existing);
    WARN("golden fixture written to " << kFixture);
  }

  const auto expected = journal_lines(kFixture / "evaluations.jsonl");
  const auto got = journal_lines(out / "evaluations.jsonl");
  const auto expected_front = nlohmann::json::parse(read_file(kFixture / "front.json"));
  const auto got_front = nlohmann::json::parse(read_file(out / "front.json"));
  const bool same_cpu = expected_front["context"]["cpu"] == cpu_model();
  const double tolerance = same_cpu ? 0.0 : 3.0 / kValidationImages;

  // Every evaluation: the same policy, kind, index, costs; the same accuracy.
  REQUIRE(got.size() == expected.size());
  CHECK(got[0]["config_hash"] != nullptr);
  bool all_equal = true;
  for (size_t i = 1; i < got.size(); ++i) {
    INFO("journal line " << i);
    CHECK(decisions(got[i]) == decisions(expected[i]));
    const double a = got[i].value("accuracy", -1.0);
    const double b = expected[i].value("accuracy", -1.0);
    CHECK(std::fabs(a - b) <= tolerance);
    all_equal =
        all_equal && a == b && got[i].value("loss", -1.0) == expected[i].value("loss", -1.0);
  }
  if (same_cpu) CHECK(all_equal);

  // The front and the best candidate under the budget follow from the accuracies.
  if (all_equal) {
    REQUIRE(got_front["front"].size() == expected_front["front"].size());
    for (size_t i = 0; i < got_front["front"].size(); ++i) {
      INFO("front member " << i);
      CHECK(decisions(got_front["front"][i]) == decisions(expected_front["front"][i]));
      CHECK(got_front["front"][i]["accuracy"] == expected_front["front"][i]["accuracy"]);
    }
    CHECK(decisions(got_front["baseline"]) == decisions(expected_front["baseline"]));
    CHECK(got_front["uniform"].size() == expected_front["uniform"].size());
    const auto expected_best = nlohmann::json::parse(read_file(kFixture / "best.json"));
    const auto got_best = nlohmann::json::parse(read_file(out / "best.json"));
    CHECK(got_best["met"] == expected_best["met"]);
    CHECK(got_best.value("best", nlohmann::json())["index"] ==
          expected_best.value("best", nlohmann::json())["index"]);
  } else {
    WARN("accuracies differ by at most " << tolerance << " from the record made on "
                                         << expected_front["context"]["cpu"]
                                         << "; front not compared");
  }
  // Every front member's network is written.
  for (const auto& m : got_front["front"])
    CHECK(fs::exists(out / "models" / (m["index"].dump() + ".tfn")));
  fs::remove_all(dir);
}
