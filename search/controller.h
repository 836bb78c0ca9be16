#pragma once
// The search controller: loads the network and data, scores the uncompressed baseline, then
// loops strategy.ask() -> apply policy -> measure latency on the target -> proxy accuracy ->
// journal line -> strategy.tell(), and finally writes the Pareto front over (accuracy up,
// latency down, size down).

#include <string>
#include <vector>

#include "search/config.h"
#include "search/evaluation.h"

namespace tightfit::search {

struct RunOptions {
  std::string out_dir;   ///< created if missing
  bool progress = true;  ///< progress lines on stderr
};

struct SearchResult {
  Evaluation baseline;
  std::vector<Evaluation> evaluations;  ///< in evaluation order
  std::vector<size_t> front;            ///< indices into `evaluations`, by latency
  nlohmann::json context;
};

SearchResult run_search(const SearchConfig& config, const RunOptions& opts);

/// Indices of the non-dominated successful evaluations over (accuracy up, latency down, size
/// down), sorted by latency.
std::vector<size_t> pareto_front(const std::vector<Evaluation>& evaluations);

/// The front as a fixed-width table (for the terminal).
std::string front_table(const SearchResult& result);

}  // namespace tightfit::search
