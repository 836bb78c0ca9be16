#include "search/report.h"

// How the page is built: every section is a function that returns an HTML fragment
// (report/sections.h, the policy cards in report/policies.h, the charts in report/svg.h), and
// every value that comes from the run passes through `esc` (report/format.h; text and attributes
// alike), so a layer named "<script>" stays text. Numbers are read leniently (`num`): a field
// that is missing, null or of another type shows as a dash instead of failing, because
// front.json gains fields over time (budgets, predicted latencies) and old runs must still
// render. The charts are inline SVG with <title> tooltips and the stylesheet (report/styles.h)
// is inline too, so the page needs neither JavaScript nor network access.

#include <filesystem>
#include <sstream>

#include "core/errors.h"
#include "core/files.h"
#include "core/json.h"
#include "search/journal.h"
#include "search/report/format.h"
#include "search/report/policies.h"
#include "search/report/sections.h"
#include "search/report/styles.h"

namespace tightfit::search {

using nlohmann::json;

std::string render_report(const nlohmann::json& front_doc,
                          const std::vector<nlohmann::json>& evaluations) {
  using namespace report;
  const json& ctx = front_doc.contains("context") ? front_doc["context"] : json();
  const json& front = front_doc.contains("front") && front_doc["front"].is_array()
                          ? front_doc["front"]
                          : json::array();
  const json& baseline = front_doc.contains("baseline") ? front_doc["baseline"] : json();
  const std::string model = str(ctx, "model");
  size_t failures = 0;
  for (const auto& e : evaluations) failures += failed(e) ? 1 : 0;

  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    // An empty icon: no favicon request, not even to the local folder.
    << "<link rel=\"icon\" href=\"data:,\">\n"
    << "<title>tightfit report" << (model.empty() ? "" : " &mdash; " + esc(model))
    << "</title>\n<style>" << kStyle << "</style></head><body>\n"
    << "<header><h1>tightfit search report</h1>\n<p class=\"muted\">" << evaluations.size()
    << " evaluations (" << failures << " failed), " << front.size() << " on the front";
  if (baseline.is_object()) o << "; baseline " << render_metrics(baseline);
  o << "</p>\n" << render_context(ctx) << "</header>\n";
  o << render_budget(front_doc);
  o << "<h2>Accuracy against cost</h2>\n" << render_charts(front_doc, evaluations);
  o << render_failures(evaluations);
  o << "<h2>Pareto front</h2>\n" << render_front_table(front, baseline);
  o << render_front_fidelity(ctx);
  if (!front.empty()) o << "<h2>Policies of the front members</h2>\n" << render_policies(front);
  o << "</body></html>\n";
  return o.str();
}

std::vector<nlohmann::json> read_journal_lines(const std::string& path) {
  return read_journal(path).lines;
}

void write_report(const std::string& run_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(run_dir);
  if (!fs::is_directory(dir))
    throw InputError("run folder '" + run_dir + "' " +
                     (fs::exists(dir) ? "is a file, not a folder" : "does not exist") +
                     "; pass the --out folder of `tightfit search`");
  const fs::path front_path = dir / "front.json";
  if (!fs::exists(front_path))
    throw InputError("'" + front_path.string() +
                     "' is missing: is this a finished `tightfit search` output folder?");
  const json doc = read_json_file(front_path.string());
  if (!doc.is_object() || !doc.contains("front") || !doc["front"].is_array())
    throw InputError("'" + front_path.string() +
                     "' has no \"front\" array: it is not a front.json written by tightfit search");
  const fs::path journal = dir / "evaluations.jsonl";
  const std::vector<json> evaluations =
      fs::exists(journal) ? read_journal_lines(journal.string()) : std::vector<json>{};

  const std::string html = render_report(doc, evaluations);
  write_file_atomic((dir / "report.html").string(), html);
}

}  // namespace tightfit::search
