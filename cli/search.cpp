#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "search/controller.h"
#include "search/outputs.h"

namespace tightfit::cli {

int cmd_search(const std::string& config_path, const std::string& out, bool json,
               const std::string& data_dir, bool resume) {
  auto config = search::SearchConfig::load(config_path);
  if (!data_dir.empty()) config.dataset_config["dir"] = data_dir;
  search::RunOptions opts;
  opts.out_dir = out;
  opts.resume = resume;
  const auto r = search::run_search(config, opts);
  if (json) {
    std::ifstream in(std::filesystem::path(out) / "front.json");
    std::cout << in.rdbuf();
  } else {
    std::printf(
        "Pareto front (%zu of %zu candidates; accuracy up, latency down, size down):\n%s"
        "written: %s/front.json, front.csv, evaluations.jsonl, models/%s\n",
        r.front.size(), r.evaluations.size(), search::front_table(r).c_str(), out.c_str(),
        r.best.is_null() ? "" : ", best.json");
    if (r.replayed > 0)
      std::printf("(%lld evaluations replayed from the journal)\n",
                  static_cast<long long>(r.replayed));
  }
  return 0;
}

}  // namespace tightfit::cli
