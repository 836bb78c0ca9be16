// `tightfit merge`: one front from the fronts of many runs of one model and target (a grid of
// seeds, budgets or strategies), each member with the run it came from; runs that are missing or
// unfinished are named.

#include "search/merge.h"

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"

namespace tightfit::cli {

int cmd_merge(const std::vector<std::string>& runs, const std::string& out, bool json) {
  const auto merged = search::merge_runs(runs);
  search::write_merge(merged, out);
  for (const auto& run : merged.runs)
    if (run.status != "finished")
      std::fprintf(stderr, "[merge] %s is %s: not merged\n", run.dir.c_str(),
                   run.status == "missing" ? "missing (no such run folder or no journal)"
                                           : "unfinished (a journal, no front.json yet)");
  if (json) {
    std::cout << merged.doc.dump(2) << "\n";
    return 0;
  }
  std::printf("%-40s %-11s %6s %7s\n", "run", "status", "front", "merged");
  for (const auto& run : merged.runs) {
    size_t kept = 0;
    for (const auto& m : merged.doc["front"]) kept += m["run"] == run.dir;
    std::printf("%-40s %-11s %6zu %7zu\n", run.dir.c_str(), run.status.c_str(), run.front, kept);
  }
  std::printf("merged front: %zu members\nwritten: %s, %s\n", merged.doc["front"].size(),
              (std::filesystem::path(out) / "front.json").string().c_str(),
              (std::filesystem::path(out) / "report.html").string().c_str());
  return 0;
}

}  // namespace tightfit::cli
