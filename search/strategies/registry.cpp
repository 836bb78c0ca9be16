// The strategy registry: names to factories, listed explicitly (no static self-registration).

#include <functional>
#include <map>

#include "core/json.h"
#include "search/strategies/evolution.h"
#include "search/strategies/netadapt.h"
#include "search/strategies/nsga2.h"
#include "search/strategies/random.h"

namespace tightfit::search {

namespace {
using Factory =
    std::function<std::unique_ptr<Strategy>(const nlohmann::json&, const SearchSpace&, uint64_t,
                                            const LatencyPredictor&, const CostPredictor&)>;
const std::map<std::string, Factory>& registry() {
  static const std::map<std::string, Factory> r = {
      {"evolution",
       [](const nlohmann::json& j, const SearchSpace& s, uint64_t seed, const LatencyPredictor&,
          const CostPredictor& cost) {
         return std::make_unique<EvolutionStrategy>(EvolutionConfig::from_json(j, "strategy"), s,
                                                    seed, cost);
       }},
      {"netadapt",
       [](const nlohmann::json& j, const SearchSpace& s, uint64_t, const LatencyPredictor& p,
          const CostPredictor&) {
         // The config is checked first, so a typo is reported before the missing cost model.
         auto config = NetAdaptConfig::from_json(j, "strategy");
         if (!p)
           throw ConfigError(
               "strategy netadapt needs latency-table cost: set \"cost\": {\"latency\": \"lut\", "
               "...}");
         return std::make_unique<NetAdaptStrategy>(config, s, p);
       }},
      {"nsga2",
       [](const nlohmann::json& j, const SearchSpace& s, uint64_t seed, const LatencyPredictor&,
          const CostPredictor&) {
         return std::make_unique<Nsga2Strategy>(Nsga2Config::from_json(j, "strategy"), s, seed);
       }},
      {"random",
       [](const nlohmann::json& j, const SearchSpace& s, uint64_t seed, const LatencyPredictor&,
          const CostPredictor&) {
         return std::make_unique<RandomStrategy>(RandomConfig::from_json(j, "strategy"), s, seed);
       }},
  };
  return r;
}
}  // namespace

std::vector<std::string> strategy_names() {
  std::vector<std::string> names;
  for (const auto& [name, f] : registry()) names.push_back(name);
  return names;
}

std::unique_ptr<Strategy> make_strategy(const std::string& name, const nlohmann::json& config,
                                        const SearchSpace& space, uint64_t seed,
                                        LatencyPredictor predictor, CostPredictor cost) {
  auto it = registry().find(name);
  if (it == registry().end())
    throw ConfigError("unknown strategy '" + name +
                      "'; valid strategies: " + join(strategy_names()));
  return it->second(config, space, seed, predictor, cost);
}

}  // namespace tightfit::search
