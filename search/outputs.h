#pragma once
// What a search writes when it ends: front.json (front, baseline, uniform baselines, context),
// front.csv, best.json for budget runs, report.html; and the front as a table for the terminal.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "search/config.h"
#include "search/controller.h"

namespace tightfit::search {

/// One evaluation as front.json lists it.
nlohmann::json front_entry(const Evaluation& e);

/// best.json: the most accurate candidate within the budget (ties: the faster), or, when none
/// is, the one closest to it with how far it is.
nlohmann::json best_under_budget(const std::vector<Evaluation>& evaluations, const Budget& b,
                                 double baseline_accuracy);

/// Hypervolume of the scored evaluations over (error, latency, size), each relative to the
/// uncompressed network `base`, with reference point 1.1 everywhere: the share of that box the
/// front dominates, comparable across runs of one model.
double relative_hypervolume(const std::vector<Evaluation>& evaluations, const Evaluation& base);

/// Writes front.json, front.csv, best.json (budget runs; also sets `result.best`) and
/// report.html into `dir`.
void write_outputs(const SearchConfig& config, SearchResult& result, const std::string& dir);

/// The front as a fixed-width table (for the terminal).
std::string front_table(const SearchResult& result);

}  // namespace tightfit::search
