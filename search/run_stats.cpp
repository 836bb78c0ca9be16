#include "search/run_stats.h"

namespace tightfit::search {

nlohmann::json RunStats::to_json() const {
  const double n = computed > 0 ? static_cast<double>(computed) : 1.0;
  return {{"computed", computed},
          {"reused_compressions", reused_compressions},
          {"seconds",
           {{"setup", setup},
            {"loop", loop},
            {"latency", latency},
            {"accuracy", accuracy},
            {"engine", engine()},
            {"apply", apply},
            {"count_cost", count_cost},
            {"strategy", strategy},
            {"screen", screen},
            {"journal", journal},
            {"other", other()},
            {"finish", finish}}},
          {"ms_per_candidate",
           {{"evaluation", 1e3 * evaluation() / n}, {"engine", 1e3 * engine() / n}}},
          {"overhead_share", overhead_share()}};
}

}  // namespace tightfit::search
