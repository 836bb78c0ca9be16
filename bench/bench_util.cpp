#include "bench/bench_util.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/errors.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/machine.h"
#include "graph/serialize.h"
#include "models/train.h"
#include "models/zoo.h"
#include "search/config.h"
#include "targets/target.h"

namespace tightfit::bench {

void add_common_options(CLI::App& app, CommonArgs& args, const CommonHelp& help) {
  if (!help.model.empty()) app.add_option("--model", args.model, help.model)->capture_default_str();
  if (help.zoo)
    app.add_option("--zoo", args.zoo, "Zoo model trained into --model when it is missing")
        ->capture_default_str();
  if (!help.out.empty()) app.add_option("--out", args.out, help.out)->capture_default_str();
  if (!help.results.empty())
    app.add_option("--results", args.results, help.results)->capture_default_str();
  if (!help.threads.empty()) {
    CLI::Option* threads =
        app.add_option("--threads", args.threads, help.threads)->capture_default_str();
    if (help.threads_at_least_one) threads->check(at_least(1));
    app.add_flag("--allow-oversubscribe", args.allow_oversubscribe,
                 "Allow --threads above this machine's hardware threads");
    app.final_callback([&args] {
      allow_oversubscribe(args.allow_oversubscribe);
      check_threads(args.threads, "--threads");
    });
  }
  if (!help.seed.empty())
    app.add_option("--seed", args.seed, help.seed)->check(at_least(0))->capture_default_str();
}

std::optional<int> parse_args(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: error: %s; see %s --help\n",
                 std::filesystem::path(argv[0]).filename().c_str(), e.what(), argv[0]);
    return 2;
  } catch (const InputError& e) {  // a value check after parsing (e.g. --threads)
    std::fprintf(stderr, "%s: error: %s\n", std::filesystem::path(argv[0]).filename().c_str(),
                 e.what());
    return 2;
  }
  return std::nullopt;
}

CLI::Validator at_least(double min) {
  char bound[32];
  std::snprintf(bound, sizeof bound, "%g", min);
  return CLI::Validator(
      [min, text = std::string(bound)](std::string& value) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(value.c_str(), &end);
        if (end == value.c_str() || *end != '\0') return "'" + value + "' is not a number";
        return v >= min ? std::string() : "is " + value + "; it must be >= " + text;
      },
      ">= " + std::string(bound));
}

nlohmann::json context(const std::string& program, int threads, uint64_t seed,
                       const nlohmann::json& args) {
  nlohmann::json c = targets::machine_context();
  c["program"] = program;
  c["tightfit"] = TIGHTFIT_VERSION;
  c["threads"] = threads;
  c["seed"] = seed;
  c["args"] = args;
  c["config_hash"] = fnv1a_hex(args.dump());
  return c;
}

graph::Network trained_model(const std::string& path, const std::string& zoo, int epochs,
                             const datasets::Split& data, int threads) {
  if (std::filesystem::exists(path)) return graph::load_network(path);
  std::fprintf(stderr, "[bench] %s not found: training %s for %d epochs first\n", path.c_str(),
               zoo.c_str(), epochs);
  graph::Network net = models::make_model(zoo, models::default_options(zoo));
  models::TrainOptions opts;
  opts.epochs = epochs;
  opts.threads = threads;
  const auto r = models::train_model(net, data, opts);
  net.meta()["test_accuracy"] = std::to_string(r.test_accuracy);
  net.meta()["epochs"] = std::to_string(epochs);
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  graph::save_network(net, path);
  return net;
}

void write_json(const std::string& path, const nlohmann::json& j) {
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::ofstream out(path);
  out << j.dump(2) << "\n";
}

}  // namespace tightfit::bench
