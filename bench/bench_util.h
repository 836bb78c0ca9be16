#pragma once
// Shared by the bench programs: their common command-line options, the run context every result
// carries and a trained model that is reused when present. Statistics are core/stats.h's.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "datasets/fashion_mnist.h"
#include "graph/network.h"

namespace tightfit::bench {

/// The options the bench programs share. A bench derives its Args from this struct, sets its
/// own defaults in the constructor, and declares the options it takes with add_common_options.
struct CommonArgs {
  std::string out;      ///< --out: the JSON result file
  std::string model;    ///< --model: the trained network file
  std::string zoo;      ///< --zoo: the zoo model trained into --model when that file is missing
  std::string results;  ///< --results: folder of the bench's search runs and intermediate files
  int threads = 1;      ///< --threads: LibTorch threads
  uint64_t seed = 1;    ///< --seed
  bool allow_oversubscribe = false;  ///< --allow-oversubscribe (declared with --threads)
};

/// Which common options one bench declares, with its help texts: an empty text leaves that
/// option out (the bench then runs with the default in CommonArgs).
struct CommonHelp {
  std::string out = "JSON output file";
  std::string model;
  bool zoo = false;  ///< declare --zoo, "Zoo model trained into --model when it is missing"
  std::string results;
  std::string threads;
  bool threads_at_least_one = false;  ///< --threads below 1 is a usage error (exit code 2)
  std::string seed;
};

/// Declares on `app` the common options `help` names, bound to the fields of `args`, each
/// showing its default in --help: --model, --zoo, --out, --results, --threads, --seed.
void add_common_options(CLI::App& app, CommonArgs& args, const CommonHelp& help);

/// Parses the command line. Empty to go on; otherwise the exit code: 0 after --help, or 2 after
/// one line on stderr naming the bad argument, as every bad input ends.
std::optional<int> parse_args(CLI::App& app, int argc, char** argv);

/// An option check whose message names the bound ("--threads: is 0; it must be >= 1"); CLI11's
/// own ranges print the largest double instead.
CLI::Validator at_least(double min);

/// CPU, library versions, threads, seed and the program's arguments.
nlohmann::json context(const std::string& program, int threads, uint64_t seed,
                       const nlohmann::json& args);

/// Loads `path`; when it does not exist, trains zoo model `zoo` for `epochs` (Adam, seed 1, the
/// README's settings) and saves it there first.
graph::Network trained_model(const std::string& path, const std::string& zoo, int epochs,
                             const datasets::Split& data, int threads);

/// Writes `j` to `path` (creating its folder).
void write_json(const std::string& path, const nlohmann::json& j);

}  // namespace tightfit::bench
