#pragma once
// report.html: one self-contained page per run (plain HTML, inline CSS and SVG, nothing fetched)
// that shows the run's context, accuracy against latency and against size for every evaluation
// with the front, the baseline and the uniform baselines marked, the front as a table, each front
// member's per-layer policy as bars, and the best-under-budget answer when the run has one.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tightfit::search {

/// The page for `front_doc` (front.json: {front, baseline, context, best?, budget?}) and the
/// journal lines (search::Evaluation JSON). Tolerates missing fields; all text is escaped.
std::string render_report(const nlohmann::json& front_doc,
                          const std::vector<nlohmann::json>& evaluations);

/// The evaluation lines of evaluations.jsonl as JSON (the header line left out). A torn last line
/// (a run killed mid-write) is skipped; a malformed line before it throws InputError naming it.
std::vector<nlohmann::json> read_journal_lines(const std::string& path);

/// Reads run_dir/front.json and run_dir/evaluations.jsonl and writes run_dir/report.html
/// atomically (tmp + rename). A missing or corrupt run folder throws InputError.
void write_report(const std::string& run_dir);

}  // namespace tightfit::search
