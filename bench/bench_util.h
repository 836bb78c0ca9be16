#pragma once
// Shared by the bench programs: the run context every result carries and a trained model that
// is reused when present.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "datasets/fashion_mnist.h"
#include "graph/network.h"

namespace tightfit::bench {

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

/// Mean (0 when empty) and sample standard deviation (0 for fewer than two values).
double mean(const std::vector<double>& v);
double stddev(const std::vector<double>& v);

/// Writes `j` to `path` (creating its folder).
void write_json(const std::string& path, const nlohmann::json& j);

}  // namespace tightfit::bench
