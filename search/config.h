#pragma once
// The search configuration file, parsed strictly: every section rejects unknown keys and lists
// the valid ones. Sections: seed, model, data, space, strategy, evaluator, target.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "search/space.h"
#include "targets/target.h"

namespace tightfit::search {

struct SearchConfig {
  uint64_t seed = 1;                ///< drives every random choice of the run (invariant 5)
  std::string model_path;           ///< tightfit network file (from `tightfit train`)
  std::string model_zoo;            ///< zoo name, used with random weights when no path
  std::string data_dir;             ///< Fashion-MNIST folder (default: Debian package's)
  int64_t validation_count = 5000;  ///< images held out of the 60k training set
  SpaceConfig space;
  std::string strategy = "random";
  nlohmann::json strategy_config = nlohmann::json::object();
  int64_t ask_batch = 4;  ///< policies asked for at a time
  std::string evaluator = "bn-recal";
  nlohmann::json evaluator_config = nlohmann::json::object();
  std::string target = "cpu-libtorch";
  targets::MeasureOptions measure;

  nlohmann::json raw;  ///< the file as read
  std::string hash;    ///< FNV-1a of the canonical JSON of `raw`

  static SearchConfig from_json(const nlohmann::json& j, const std::string& where);
  static SearchConfig load(const std::string& path);
};

}  // namespace tightfit::search
