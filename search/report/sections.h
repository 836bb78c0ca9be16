#pragma once
// The sections of report.html other than the policy cards, each an HTML fragment: the run's
// context, the budget answer, the charts, the failed evaluations, the front as a table and the
// proxy's fidelity on it. Every value from the run is escaped; missing fields show as a dash.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tightfit::search::report {

/// "accuracy <b>..</b>, latency <b>..</b>, size <b>..</b>, FLOPs ..": one evaluation in a line.
std::string render_metrics(const nlohmann::json& e);

/// The run context as a definition list: known keys first in reading order, then every other
/// key under its own name; long objects and arrays go into collapsible blocks after the list.
std::string render_context(const nlohmann::json& ctx);

/// Both charts: accuracy (%) against latency (ms) and against size, from front.json (`doc`) and
/// the journal lines.
std::string render_charts(const nlohmann::json& doc,
                          const std::vector<nlohmann::json>& evaluations);

/// The failed evaluations with their errors, collapsed; "" when none failed.
std::string render_failures(const std::vector<nlohmann::json>& evaluations);

/// The front as a table, the baseline on top and ratios against it; optional columns
/// (fine-tuned accuracy, predicted and measured latency) only when some member has them.
std::string render_front_table(const nlohmann::json& front, const nlohmann::json& baseline);

/// How far the proxy could be trusted on this front: its rank agreement with the fine-tune; ""
/// when the context has no front_fidelity.
std::string render_front_fidelity(const nlohmann::json& ctx);

/// The budget answer. Shapes accepted: front.json's `best` as written by the controller
/// ({budget, met, best | closest, closest_excess}), `best` as a front entry with its `budget`
/// inside, or a top-level `budget` object ({met, closest, limits...}). "" when there is none.
std::string render_budget(const nlohmann::json& doc);

}  // namespace tightfit::search::report
