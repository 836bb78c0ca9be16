// `tightfit report`: renders report.html for a finished (or interrupted) search run folder from
// its front.json and evaluations.jsonl; the page is self-contained and opens offline.

#include "search/report.h"

#include <cstdio>
#include <filesystem>

#include "cli/commands.h"

namespace tightfit::cli {

int cmd_report(const std::string& run_dir) {
  search::write_report(run_dir);
  std::printf("written: %s\n", (std::filesystem::path(run_dir) / "report.html").string().c_str());
  return 0;
}

}  // namespace tightfit::cli
