// A search killed with SIGKILL at random moments and resumed each time ends with the journal
// and front of an uninterrupted run with the same seed (lookup-table latency, so both runs see
// the same costs). Runs the real `tightfit search` binary in child processes.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../child_process.h"
#include "run_files.h"

namespace fs = std::filesystem;
using tightfit::test::decisions;
using tightfit::test::journal_lines;
using tightfit::test::read_file;
using tightfit::test::wait_for;

namespace {

/// Starts `tightfit search` with `args`; stdout and stderr go to `log`.
pid_t start_search(std::vector<std::string> args, const fs::path& log) {
  args.insert(args.begin(), "search");
  return tightfit::test::start_cli(args, log);
}

/// Complete lines in `path` (0 when it does not exist yet).
size_t count_lines(const fs::path& path) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += in.eof() ? 0 : 1;
  return n;
}

}  // namespace

TEST_CASE("a search killed with SIGKILL 5 times and resumed equals an uninterrupted run",
          "[search][resume]") {
  const fs::path dir =
      fs::temp_directory_path() / ("tightfit_resume_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const nlohmann::json config = {
      {"seed", 7},
      {"model", {{"zoo", "vgg_small"}}},
      {"data", {{"validation_count", 5000}}},
      {"space",
       {{"keep", {0.25, 0.5, 0.75, 1.0}}, {"weight_bits", {32, 8}}, {"channel_multiple", 8}}},
      {"strategy", {{"name", "random"}, {"evaluations", 24}, {"ask_batch", 3}}},
      {"finetune_front", nullptr},  // the front fine-tune is not what is tested here
      {"evaluator",
       {{"name", "bn-recal"},
        {"bn_batches", 2},
        {"batch_size", 64},
        {"validation_images", 256},
        {"threads", 1}}},
      {"target", {{"name", "cpu-onednn"}, {"threads", 1}, {"min_time_ms", 5}}},
      {"cost", {{"latency", "lut"}, {"table", (dir / "lut.json").string()}}},
      {"budget", {{"latency_ms", 0.15}}},
      {"baselines", {{"keep", {0.5}}}}};
  const fs::path config_path = dir / "config.json";
  std::ofstream(config_path) << config.dump(2);

  // The uninterrupted run (it also profiles the latency table both runs share).
  const fs::path whole = dir / "whole";
  REQUIRE(wait_for(start_search({"--config", config_path, "--out", whole}, dir / "whole.log")) ==
          0);
  const auto expected = journal_lines(whole / "evaluations.jsonl");
  REQUIRE(expected.size() > 20);

  // The same run, killed at 5 random moments and resumed each time. The moments are set by the
  // run's own progress, not by the clock (a fast CPU finishes this search in about 2 s): each
  // attempt is killed once its journal has grown by a random 1 to 4 lines, a few milliseconds
  // after the last of them, so a kill can land mid-evaluation or mid-line.
  const fs::path killed = dir / "killed";
  std::mt19937 rng(11);
  std::uniform_int_distribution<size_t> grow_lines(1, 4);
  std::uniform_int_distribution<int> settle_ms(0, 15);
  int kills = 0, attempts = 0;
  size_t kill_at = 1;  // journal lines
  while (kills < 5 && attempts < 20) {
    ++attempts;
    std::vector<std::string> args = {"--config", config_path, "--out", killed};
    if (fs::exists(killed / "evaluations.jsonl")) args.push_back("--resume");
    kill_at += grow_lines(rng);
    const pid_t pid = start_search(args, dir / "killed.log");
    int status = 0;
    bool exited = false;
    while (!(exited = ::waitpid(pid, &status, WNOHANG) == pid) &&
           count_lines(killed / "evaluations.jsonl") < kill_at)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (exited) break;  // it finished before the kill: nothing left to interrupt
    std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms(rng)));
    if (::kill(pid, SIGKILL) == 0 && wait_for(pid) == -SIGKILL) {
      ++kills;
    } else {
      break;  // it finished before the kill: nothing left to interrupt
    }
  }
  INFO(read_file(dir / "killed.log"));
  CHECK(kills == 5);
  REQUIRE(wait_for(start_search({"--config", config_path, "--out", killed, "--resume"},
                                dir / "killed.log")) == 0);

  // No evaluation lost or duplicated: the same lines in the same order.
  const auto got = journal_lines(killed / "evaluations.jsonl");
  REQUIRE(got.size() == expected.size());
  CHECK(got[0]["config_hash"] == expected[0]["config_hash"]);
  for (size_t i = 1; i < got.size(); ++i) {
    INFO("journal line " << i);
    CHECK(got[i]["index"] == static_cast<int64_t>(i) - 2);
    CHECK(decisions(got[i]) == decisions(expected[i]));
  }
  // The same front, the same best candidate under the budget.
  const auto front_a = nlohmann::json::parse(read_file(whole / "front.json"));
  const auto front_b = nlohmann::json::parse(read_file(killed / "front.json"));
  REQUIRE(front_a["front"].size() == front_b["front"].size());
  for (size_t i = 0; i < front_a["front"].size(); ++i)
    CHECK(decisions(front_a["front"][i]) == decisions(front_b["front"][i]));
  CHECK(decisions(front_a["best"]["best"]) == decisions(front_b["best"]["best"]));
  CHECK(fs::exists(killed / "best.json"));
  CHECK(fs::exists(killed / "models" / (front_b["front"][0]["index"].dump() + ".tfn")));
  fs::remove_all(dir);
}

TEST_CASE("a journal is never overwritten, and a changed config cannot resume it",
          "[search][resume]") {
  const fs::path dir =
      fs::temp_directory_path() / ("tightfit_refuse_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "run");
  nlohmann::json config = {
      {"seed", 3},
      {"model", {{"zoo", "vgg_small"}}},
      {"strategy", {{"name", "random"}, {"evaluations", 2}}},
      {"finetune_front", nullptr},  // the front fine-tune is not what is tested here
      {"evaluator", {{"name", "bn-recal"}, {"bn_batches", 0}, {"validation_images", 64}}},
      {"target", {{"name", "cpu-onednn"}, {"min_time_ms", 1}, {"min_repeats", 3}}},
      {"baselines", {{"keep", nlohmann::json::array()}}}};
  std::ofstream(dir / "a.json") << config.dump();
  config["seed"] = 4;
  config["strategy"]["evaluations"] = 3;
  std::ofstream(dir / "b.json") << config.dump();
  const std::string journal = "{\"format\":\"tightfit-search-journal\",\"config_hash\":\"x\"}\n";
  std::ofstream(dir / "run" / "evaluations.jsonl") << journal;

  CHECK(wait_for(start_search({"--config", dir / "a.json", "--out", dir / "run"},
                              dir / "overwrite.log")) == 2);
  CHECK(read_file(dir / "overwrite.log").find("never overwritten") != std::string::npos);
  CHECK(read_file(dir / "run" / "evaluations.jsonl") == journal);

  REQUIRE(wait_for(start_search({"--config", dir / "a.json", "--out", dir / "fresh"},
                                dir / "fresh.log")) == 0);
  CHECK(wait_for(start_search({"--config", dir / "b.json", "--out", dir / "fresh", "--resume"},
                              dir / "changed.log")) == 2);
  const std::string changed = read_file(dir / "changed.log");
  INFO(changed);
  CHECK(changed.find("config changed") != std::string::npos);
  CHECK(changed.find("/seed") != std::string::npos);
  CHECK(changed.find("/strategy/evaluations") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("a shared evaluation cache answers a second run without evaluating again",
          "[search][resume]") {
  const fs::path dir = fs::temp_directory_path() / ("tightfit_cache_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const nlohmann::json config = {
      {"seed", 5},
      {"model", {{"zoo", "vgg_small"}}},
      {"strategy", {{"name", "random"}, {"evaluations", 4}}},
      {"finetune_front", nullptr},  // the front fine-tune is not what is tested here
      {"evaluator", {{"name", "bn-recal"}, {"bn_batches", 1}, {"validation_images", 64}}},
      {"target", {{"name", "analytic-roofline"}}},
      {"baselines", {{"keep", {0.5}}}},
      {"cache", (dir / "cache.jsonl").string()}};
  std::ofstream(dir / "config.json") << config.dump();
  REQUIRE(wait_for(start_search({"--config", dir / "config.json", "--out", dir / "a"},
                                dir / "a.log")) == 0);
  REQUIRE(wait_for(start_search({"--config", dir / "config.json", "--out", dir / "b"},
                                dir / "b.log")) == 0);
  const auto a = journal_lines(dir / "a" / "evaluations.jsonl");
  const auto b = journal_lines(dir / "b" / "evaluations.jsonl");
  REQUIRE(a.size() == b.size());
  for (size_t i = 1; i < a.size(); ++i) {
    INFO("journal line " << i);
    CHECK_FALSE(a[i].value("cached", false));
    CHECK(b[i].value("cached", false));
    CHECK(decisions(a[i]) == decisions(b[i]));
  }
  fs::remove_all(dir);
}

TEST_CASE("the evaluation cache is keyed by everything that changes a result",
          "[search][resume][cache]") {
  const fs::path dir =
      fs::temp_directory_path() / ("tightfit_cache_key_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "fm");
  // A copy of Fashion-MNIST, unpacked (read as it is), whose bytes this test can change.
  for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                           "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) {
    const std::string cmd = std::string("zcat /usr/share/datasets/fashion-mnist/") + name + " > " +
                            (dir / "fm" / name).string();
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  // One trained step changes the weights, not the structure.
  {
    const std::string cmd =
        std::string(TIGHTFIT_CLI) + " train --model vgg_small --epochs 1 --max-steps 1 --out " +
        (dir / "other.tfn").string() + " > " + (dir / "train.log").string() + " 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  const nlohmann::json base = {
      {"seed", 5},
      {"model", {{"zoo", "vgg_small"}}},
      {"data", {{"dir", (dir / "fm").string()}}},
      {"strategy", {{"name", "random"}, {"evaluations", 3}}},
      {"finetune_front", nullptr},  // the front fine-tune is not what is tested here
      {"evaluator", {{"name", "bn-recal"}, {"bn_batches", 1}, {"validation_images", 64}}},
      {"target", {{"name", "analytic-roofline"}}},
      {"cost",
       {{"latency", "roofline"},
        {"device", {{"fp32_gflops", 50}, {"int8_gops", 200}, {"bandwidth_gbps", 20}}}}},
      {"baselines", {{"keep", {0.5}}}},
      {"cache", (dir / "cache.jsonl").string()}};
  int run = 0;
  // Runs `config`; the share of its evaluations answered by the cache, in [0, 1].
  const auto reused = [&](const nlohmann::json& config) {
    const fs::path out = dir / ("run" + std::to_string(++run));
    std::ofstream(dir / "config.json") << config.dump();
    REQUIRE(wait_for(start_search({"--config", dir / "config.json", "--out", out},
                                  dir / ("run" + std::to_string(run) + ".log"))) == 0);
    const auto lines = journal_lines(out / "evaluations.jsonl");
    REQUIRE(lines.size() > 3);
    size_t cached = 0;
    for (size_t i = 1; i < lines.size(); ++i) cached += lines[i].value("cached", false) ? 1 : 0;
    return static_cast<double>(cached) / static_cast<double>(lines.size() - 1);
  };
  const auto with = [&](const nlohmann::json::json_pointer& at, const nlohmann::json& value) {
    nlohmann::json c = base;
    c[at] = value;
    return c;
  };
  using ptr = nlohmann::json::json_pointer;

  CHECK(reused(base) == 0.0);
  CHECK(reused(base) == 1.0);  // nothing changed: every evaluation reused
  const std::vector<std::pair<std::string, nlohmann::json>> changes = {
      {"network content", with(ptr("/model"), {{"path", (dir / "other.tfn").string()}})},
      {"data folder", with(ptr("/data/dir"), "/usr/share/datasets/fashion-mnist")},
      {"split", with(ptr("/data/validation_count"), 4000)},
      {"evaluator settings", with(ptr("/evaluator/bn_batches"), 2)},
      {"evaluator seed", with(ptr("/evaluator/seed"), 8)},
      {"calibration seed", with(ptr("/seed"), 6)},
      {"protocol", with(ptr("/target/batch"), 2)},
      {"target", with(ptr("/target/name"), "analytic-bitfusion")},
      {"cost model", with(ptr("/cost"), {{"latency", "bitfusion"}})},
      {"cost table", with(ptr("/cost/device/fp32_gflops"), 60)},
      {"channel rounding", with(ptr("/space/channel_multiple"), 4)}};
  for (const auto& [what, config] : changes) {
    INFO("changed: " << what);
    CHECK(reused(config) == 0.0);
  }
  // The same folder whose images changed (one pixel of the last test image) is new data.
  {
    std::fstream f(dir / "fm" / "t10k-images-idx3-ubyte.gz",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-1, std::ios::end);
    const char last = static_cast<char>(f.get());
    f.seekp(-1, std::ios::end);
    f.put(static_cast<char>(last ^ 0x55));
  }
  {
    INFO("changed: the images' content");
    CHECK(reused(base) == 0.0);
  }
  fs::remove_all(dir);
}

TEST_CASE("a second search on a locked run folder stops at once, naming the holder",
          "[search][resume][lock]") {
  const fs::path dir = fs::temp_directory_path() / ("tightfit_lock_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const nlohmann::json config = {
      {"seed", 9},
      {"model", {{"zoo", "vgg_small"}}},
      {"strategy", {{"name", "random"}, {"evaluations", 30}}},
      {"finetune_front", nullptr},  // the front fine-tune is not what is tested here
      {"evaluator", {{"name", "bn-recal"}, {"bn_batches", 1}, {"validation_images", 256}}},
      {"target", {{"name", "analytic-roofline"}}},
      {"baselines", {{"keep", {0.5}}}}};
  std::ofstream(dir / "config.json") << config.dump();
  const fs::path out = dir / "run";

  // The first search holds the folder from its start; wait until it is evaluating.
  const pid_t first = start_search({"--config", dir / "config.json", "--out", out}, dir / "a.log");
  int status = 0;
  while (::waitpid(first, &status, WNOHANG) == 0 && count_lines(out / "evaluations.jsonl") < 2)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(fs::exists(out / "evaluations.jsonl"));

  // A second one, new or resuming, ends with exit code 2 and names the holder's PID.
  for (const bool resume : {false, true}) {
    std::vector<std::string> args = {"--config", dir / "config.json", "--out", out};
    if (resume) args.push_back("--resume");
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(wait_for(start_search(args, dir / "b.log")) == 2);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
    const std::string said = read_file(dir / "b.log");
    INFO(said);
    CHECK(said.find("in use by another tightfit search") != std::string::npos);
    CHECK(said.find("PID " + std::to_string(first)) != std::string::npos);
  }

  // The first search ends as if alone: a whole journal and a front.
  REQUIRE(wait_for(first) == 0);
  const auto lines = journal_lines(out / "evaluations.jsonl");
  // header, baseline, 3 uniform baselines (keep 0.5 at 32 and 8 bits, 8 bits unpruned), search
  CHECK(lines.size() == 1 + 1 + 3 + 30);
  CHECK(fs::exists(out / "front.json"));
  // Released with the process: the folder takes a --resume (nothing left to do).
  CHECK(wait_for(start_search({"--config", dir / "config.json", "--out", out, "--resume"},
                              dir / "c.log")) == 0);
  fs::remove_all(dir);
}

TEST_CASE("two searches started at the same instant on one folder: one runs, one is refused",
          "[search][resume][lock]") {
  const fs::path dir =
      fs::temp_directory_path() / ("tightfit_lock_race_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const nlohmann::json config = {
      {"seed", 4},
      {"model", {{"zoo", "vgg_small"}}},
      {"strategy", {{"name", "random"}, {"evaluations", 6}}},
      {"finetune_front", nullptr},  // the front fine-tune is not what is tested here
      {"evaluator", {{"name", "bn-recal"}, {"bn_batches", 1}, {"validation_images", 64}}},
      {"target", {{"name", "analytic-roofline"}}},
      {"baselines", {{"keep", {0.5}}}}};
  std::ofstream(dir / "config.json") << config.dump();
  const fs::path out = dir / "run";
  // Neither has created the folder yet when both start.
  const pid_t a = start_search({"--config", dir / "config.json", "--out", out}, dir / "a.log");
  const pid_t b = start_search({"--config", dir / "config.json", "--out", out}, dir / "b.log");
  const int rc_a = wait_for(a), rc_b = wait_for(b);
  INFO("a: " << read_file(dir / "a.log") << "\nb: " << read_file(dir / "b.log"));
  CHECK(std::min(rc_a, rc_b) == 0);
  CHECK(std::max(rc_a, rc_b) == 2);
  const std::string refused = read_file(dir / (rc_a == 2 ? "a.log" : "b.log"));
  CHECK(refused.find("in use by another tightfit search") != std::string::npos);
  // One whole run's journal, which resumes (everything replayed, nothing new).
  const auto lines = journal_lines(out / "evaluations.jsonl");
  CHECK(lines.size() == 1 + 1 + 3 + 6);
  REQUIRE(wait_for(start_search({"--config", dir / "config.json", "--out", out, "--resume"},
                                dir / "c.log")) == 0);
  CHECK(journal_lines(out / "evaluations.jsonl").size() == lines.size());
  fs::remove_all(dir);
}
