// Hostile inputs in a loop (issue 19): model files whose header is mutated (the checksum
// recomputed, so the mutation reaches the parser and the network checks) and search configs with
// mutated values, each given to the real `tightfit` in a child process. Whatever the input, the
// process ends with exit code 0 or 2: never 1 (an internal error), never a signal (a crash).
// The cases are drawn from a fixed seed, so a failure is reproduced by running the test again.

#include <unistd.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "../child_process.h"

namespace fs = std::filesystem;

namespace {

/// Runs `tightfit args...` with output to `log` (replaced); the exit code, or -signal.
int run_cli(const std::vector<std::string>& args, const fs::path& log) {
  fs::remove(log);
  return tightfit::test::wait_for(tightfit::test::start_cli(args, log));
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

template <typename T>
T get_at(const std::string& buf, size_t pos) {
  T v;
  std::memcpy(&v, buf.data() + pos, sizeof(T));
  return v;
}

template <typename T>
void put(std::string& buf, T v) {
  buf.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

/// A network file split into its parts: magic and version, header text, parameter data.
struct NetworkFile {
  std::string prefix;  ///< magic + version
  std::string header;
  std::string data;

  static NetworkFile read(const fs::path& p) {
    const std::string buf = read_all(p);
    NetworkFile f;
    f.prefix = buf.substr(0, 12);
    const auto header_len = get_at<uint64_t>(buf, 12);
    f.header = buf.substr(20, header_len);
    const auto data_len = get_at<uint64_t>(buf, 20 + header_len);
    f.data = buf.substr(28 + header_len, data_len);
    return f;
  }
  /// Written with a valid checksum, as the container format lays it out.
  void write(const fs::path& p) const {
    std::string buf = prefix;
    put<uint64_t>(buf, header.size());
    buf += header;
    put<uint64_t>(buf, data.size());
    buf += data;
    put<uint32_t>(buf, static_cast<uint32_t>(
                           crc32(0L, reinterpret_cast<const Bytef*>(buf.data()), buf.size())));
    std::ofstream(p, std::ios::binary) << buf;
  }
};

/// Values a hostile or careless hand puts where a number belongs.
nlohmann::json hostile_value(std::mt19937_64& rng) {
  static const std::vector<nlohmann::json> values = {0,
                                                     -1,
                                                     1,
                                                     2,
                                                     3,
                                                     7,
                                                     1000000000,
                                                     -1000000000,
                                                     2.5,
                                                     1e30,
                                                     -1e30,
                                                     0.0,
                                                     1e-9,
                                                     "x",
                                                     nullptr,
                                                     true,
                                                     nlohmann::json::array(),
                                                     nlohmann::json::object(),
                                                     {0, 0},
                                                     {1},
                                                     {-1, 1},
                                                     {0, 1},
                                                     {1, 0},
                                                     {100000, 100000},
                                                     {2, 3, 4},
                                                     9223372036854775807LL,
                                                     18446744073709551615ULL};
  return values[std::uniform_int_distribution<size_t>(0, values.size() - 1)(rng)];
}

/// One mutation of a network header: an attribute, a parameter shape, the input shape, the
/// output, a node's inputs, or raw bytes of the text.
std::string mutate_header(const std::string& text, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  nlohmann::json h = nlohmann::json::parse(text);
  auto& nodes = h["nodes"];
  switch (pick(7)) {
    case 0:
    case 1: {  // an attribute, existing or not
      static const char* keys[] = {
          "stride",       "padding", "dilation",   "kernel",      "groups",   "in_channels",
          "out_channels", "eps",     "momentum",   "output_size", "p",        "scale",
          "q_min",        "q_max",   "zero_point", "bias",        "ceil_mode"};
      auto& node = nodes[1 + pick(nodes.size() - 1)];
      node["attrs"][keys[pick(std::size(keys))]] = hostile_value(rng);
      break;
    }
    case 2: {  // a parameter's shape
      auto& node = nodes[1 + pick(nodes.size() - 1)];
      if (node["params"].empty()) break;
      auto& shape = node["params"][pick(node["params"].size())]["shape"];
      if (shape.empty()) break;
      shape[pick(shape.size())] = hostile_value(rng);
      break;
    }
    case 3:
      h["input_shape"][pick(3)] = hostile_value(rng);
      break;
    case 4:
      h["output"] = hostile_value(rng);
      break;
    case 5: {
      auto& node = nodes[1 + pick(nodes.size() - 1)];
      node["inputs"] = pick(2) ? hostile_value(rng) : nlohmann::json::array({hostile_value(rng)});
      break;
    }
    case 6: {  // raw bytes: the text may stop being JSON
      std::string s = h.dump();
      for (int k = 0; k < 3; ++k) s[pick(s.size())] = static_cast<char>(pick(256));
      return s;
    }
  }
  return h.dump();
}

/// One mutation of a search config: a value anywhere in it replaced, a key added, or a key
/// written twice.
std::string mutate_config(const nlohmann::json& config, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  nlohmann::json c = config;
  const auto flat = c.flatten();
  std::vector<std::string> paths;
  for (auto it = flat.begin(); it != flat.end(); ++it) paths.push_back(it.key());
  switch (pick(3)) {
    case 0:
    case 1:
      c[nlohmann::json::json_pointer(paths[pick(paths.size())])] = hostile_value(rng);
      return c.dump();
    default: {  // a duplicate key at the top level
      std::string s = c.dump();
      static const char* keys[] = {"seed", "model", "budget", "strategy"};
      return "{\"" + std::string(keys[pick(4)]) + "\": 3, " + s.substr(1);
    }
  }
}

}  // namespace

TEST_CASE("mutated network files end in exit code 0 or 2, never a crash", "[cli][fuzz]") {
  const fs::path dir =
      fs::temp_directory_path() / ("tightfit_fuzz_net_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path original = dir / "resnet.tfn";
  REQUIRE(run_cli({"train", "--model", "resnet8", "--epochs", "1", "--max-steps", "1", "--out",
                   original.string()},
                  dir / "train.log") == 0);
  const NetworkFile file = NetworkFile::read(original);
  std::mt19937_64 rng(19);
  constexpr int kCases = 100;
  int accepted = 0, measured = 0;
  for (int i = 0; i < kCases; ++i) {
    NetworkFile mutated = file;
    mutated.header = mutate_header(file.header, rng);
    const fs::path path = dir / ("case" + std::to_string(i) + ".tfn");
    mutated.write(path);
    const int rc = run_cli({"info", "--model", path.string()}, dir / "info.log");
    INFO("case " << i << ": " << mutated.header.substr(0, 300) << "\n"
                 << read_all(dir / "info.log"));
    REQUIRE((rc == 0 || rc == 2));
    if (rc == 2) {
      const std::string said = read_all(dir / "info.log");
      CHECK(said.rfind("tightfit: error: ", 0) == 0);
      CHECK(std::count(said.begin(), said.end(), '\n') == 1);
    }
    if (rc != 0) continue;
    ++accepted;
    // A file the checks accept also runs: a few are timed end to end.
    if (measured < 8) {
      ++measured;
      const int m = run_cli({"measure", "--model", path.string(), "--target", "cpu-onednn"},
                            dir / "measure.log");
      INFO(read_all(dir / "measure.log"));
      CHECK((m == 0 || m == 2));
    }
    fs::remove(path);
  }
  // The mutations reach past the checksum: some are refused, some are harmless.
  CHECK(accepted > 0);
  CHECK(accepted < kCases);
  fs::remove_all(dir);
}

TEST_CASE("mutated search configs end in exit code 0 or 2, never a crash", "[cli][fuzz]") {
  const fs::path dir =
      fs::temp_directory_path() / ("tightfit_fuzz_cfg_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const nlohmann::json base = {
      {"seed", 3},
      {"model", {{"zoo", "vgg_small"}}},
      {"data", {{"validation_count", 1000}}},
      {"space", {{"keep", {0.5, 1.0}}, {"weight_bits", {8, 32}}, {"channel_multiple", 8}}},
      {"strategy", {{"name", "random"}, {"evaluations", 2}, {"ask_batch", 2}}},
      {"evaluator", {{"name", "bn-recal"}, {"bn_batches", 1}, {"validation_images", 32}}},
      {"target", {{"name", "analytic-roofline"}, {"threads", 1}, {"batch", 1}}},
      {"cost", {{"latency", "roofline"}}},
      {"budget", {{"latency_ms", 5}, {"size_bytes", 10000000}}},
      {"baselines", {{"keep", {0.5}}}}};
  std::mt19937_64 rng(1919);
  constexpr int kCases = 50;
  int ran = 0;
  for (int i = 0; i < kCases; ++i) {
    const std::string text = mutate_config(base, rng);
    std::ofstream(dir / "config.json") << text;
    const fs::path out = dir / ("run" + std::to_string(i));
    const int rc =
        run_cli({"search", "--config", (dir / "config.json").string(), "--out", out.string()},
                dir / "search.log");
    const std::string said = read_all(dir / "search.log");
    INFO("case " << i << ": " << text << "\n" << said);
    REQUIRE((rc == 0 || rc == 2));
    if (rc == 2) CHECK(said.find("tightfit: error: ") != std::string::npos);
    ran += rc == 0 ? 1 : 0;
    fs::remove_all(out);
  }
  CHECK(ran > 0);
  CHECK(ran < kCases);
  fs::remove_all(dir);
}
