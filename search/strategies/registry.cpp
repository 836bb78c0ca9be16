// The strategy registry. A new strategy is one file under search/strategies/ and one line in
// register_builtin_strategies().

#include "core/registry.h"

#include "search/strategies/evolution.h"
#include "search/strategies/netadapt.h"
#include "search/strategies/nsga2.h"
#include "search/strategies/random.h"

namespace tightfit::search {

namespace {

/// What a strategy may use besides its own config section.
struct StrategyContext {
  const SearchSpace& space;
  uint64_t seed;
  LatencyPredictor latency;  ///< empty when the run measures latency
  CostPredictor cost;        ///< empty outside a search
};

using StrategyRegistry = Registry<Strategy, StrategyContext>;

/// The factory of a strategy that needs only its config, the space and the seed.
template <typename T, typename Config>
StrategyRegistry::Factory factory() {
  return [](const nlohmann::json& j, const StrategyContext& c) -> std::unique_ptr<Strategy> {
    return std::make_unique<T>(Config::from_json(j, "strategy"), c.space, c.seed);
  };
}

void register_builtin_strategies(StrategyRegistry& r) {
  r.add("evolution", [](const nlohmann::json& j, const StrategyContext& c) {
    return std::make_unique<EvolutionStrategy>(EvolutionConfig::from_json(j, "strategy"), c.space,
                                               c.seed, c.cost);
  });
  r.add("netadapt", [](const nlohmann::json& j, const StrategyContext& c) {
    // The config is checked first, so a typo is reported before the missing cost model.
    auto config = NetAdaptConfig::from_json(j, "strategy");
    if (!c.latency)
      throw ConfigError(
          "strategy netadapt needs latency-table cost: set \"cost\": {\"latency\": \"lut\", "
          "...}");
    return std::make_unique<NetAdaptStrategy>(config, c.space, c.latency);
  });
  r.add("nsga2", factory<Nsga2Strategy, Nsga2Config>());
  r.add("random", [](const nlohmann::json& j, const StrategyContext& c) {
    return std::make_unique<RandomStrategy>(RandomConfig::from_json(j, "strategy"), c.space, c.seed,
                                            c.cost);
  });
}

const StrategyRegistry& registry() {
  return builtin_registry("strategy", "strategies", register_builtin_strategies);
}

}  // namespace

std::vector<std::string> strategy_names() { return registry().names(); }

bool admits(const Limits& limits, const PredictedCost& cost) {
  return !(limits.flops > 0 && cost.flops > limits.flops) &&
         !(limits.size_bytes > 0 && cost.size_bytes > limits.size_bytes) &&
         !(limits.latency_ms > 0 && cost.latency_ms >= 0 && cost.latency_ms > limits.latency_ms);
}

std::unique_ptr<Strategy> make_strategy(const std::string& name, const nlohmann::json& config,
                                        const SearchSpace& space, uint64_t seed,
                                        LatencyPredictor predictor, CostPredictor cost) {
  return registry().make(name, config, {space, seed, std::move(predictor), std::move(cost)});
}

}  // namespace tightfit::search
