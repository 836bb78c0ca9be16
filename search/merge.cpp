#include "search/merge.h"

#include <algorithm>
#include <filesystem>

#include "core/errors.h"
#include "core/files.h"
#include "core/json.h"
#include "core/timing.h"
#include "search/pareto.h"
#include "search/report.h"

namespace tightfit::search {

namespace {

namespace fs = std::filesystem;

/// What runs must share to be merged: the network and where its latency was measured.
std::string identity(const nlohmann::json& ctx) {
  return "model " + ctx.value("model", std::string("?")) + ", target " +
         ctx.value("target", std::string("?")) + ", precision " +
         ctx.value("precision", std::string("?"));
}

}  // namespace

MergeResult merge_runs(const std::vector<std::string>& dirs) {
  if (dirs.empty()) throw InputError("merge needs at least one run folder");
  MergeResult r;
  std::string first_identity, first_dir;
  nlohmann::json members = nlohmann::json::array();
  for (const auto& dir : dirs) {
    MergedRun run{dir, "missing", 0};
    const fs::path front_path = fs::path(dir) / "front.json";
    if (!fs::exists(front_path)) {
      if (fs::exists(fs::path(dir) / "evaluations.jsonl")) run.status = "unfinished";
      r.runs.push_back(run);
      continue;
    }
    const auto doc = read_json_file(front_path.string());
    if (!doc.is_object() || !doc.contains("front") || !doc["front"].is_array() ||
        !doc.contains("context"))
      throw InputError("'" + front_path.string() +
                       "' is not a front.json written by tightfit search; check the run folder");
    const std::string id = identity(doc["context"]);
    if (first_identity.empty()) {
      first_identity = id;
      first_dir = dir;
      r.doc["baseline"] = doc.value("baseline", nlohmann::json());
    } else if (id != first_identity) {
      throw InputError("runs '" + first_dir + "' (" + first_identity + ") and '" + dir + "' (" +
                       id + ") cannot share one front; merge runs of one model and target");
    }
    run.status = "finished";
    run.front = doc["front"].size();
    for (auto m : doc["front"]) {
      m["run"] = dir;
      members.push_back(std::move(m));
    }
    const fs::path journal = fs::path(dir) / "evaluations.jsonl";
    if (fs::exists(journal))
      for (auto& line : read_journal_lines(journal.string())) r.evaluations.push_back(line);
    r.runs.push_back(run);
  }
  if (first_identity.empty())
    throw InputError("none of the " + std::to_string(dirs.size()) +
                     " run folders has finished (no front.json); wait for the runs or rerun "
                     "them with `tightfit search --resume`");

  std::vector<std::vector<double>> points;
  for (const auto& m : members)
    points.push_back(
        {-m.value("accuracy", 0.0), m.value("latency_ms", 0.0), m.value("size_bytes", 0.0)});
  nlohmann::json front = nlohmann::json::array();
  for (size_t i : non_dominated(points)) front.push_back(members[i]);
  std::stable_sort(front.begin(), front.end(), [](const auto& a, const auto& b) {
    return a.value("latency_ms", 0.0) < b.value("latency_ms", 0.0);
  });
  nlohmann::json runs = nlohmann::json::array();
  for (const auto& run : r.runs)
    runs.push_back({{"run", run.dir}, {"status", run.status}, {"front", run.front}});
  r.doc["front"] = front;
  r.doc["runs"] = runs;
  r.doc["context"] = {{"merged_from", dirs},
                      {"runs", runs},
                      {"identity", first_identity},
                      {"tightfit", TIGHTFIT_VERSION},
                      {"merged", now_utc()}};
  return r;
}

void write_merge(const MergeResult& merged, const std::string& out) {
  fs::create_directories(out);
  write_file_atomic((fs::path(out) / "front.json").string(), merged.doc.dump(2) + "\n");
  write_file_atomic((fs::path(out) / "report.html").string(),
                    render_report(merged.doc, merged.evaluations));
}

}  // namespace tightfit::search
