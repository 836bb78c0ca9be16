#include "search/config.h"

#include <cstdio>

#include "datasets/fashion_mnist.h"
#include "graph/json_util.h"

namespace tightfit::search {

namespace {
/// Splits {"name": X, ...rest} into X and rest.
std::pair<std::string, nlohmann::json> named_section(const nlohmann::json& j,
                                                     const std::string& fallback,
                                                     const std::string& where) {
  if (j.is_null()) return {fallback, nlohmann::json::object()};
  if (!j.is_object()) throw ConfigError(where + " must be a JSON object");
  nlohmann::json rest = j;
  std::string name = fallback;
  if (rest.contains("name")) {
    if (!rest["name"].is_string()) throw ConfigError(where + ".name must be a string");
    name = rest["name"].get<std::string>();
    rest.erase("name");
  }
  return {name, rest};
}
}  // namespace

SearchConfig SearchConfig::from_json(const nlohmann::json& j, const std::string& where) {
  check_keys(j, {"seed", "model", "data", "space", "strategy", "evaluator", "target"}, where);
  SearchConfig c;
  c.raw = j;
  c.hash = fnv1a_hex(j.dump());
  c.seed = get_or(j, "seed", c.seed, where);

  const auto model = j.value("model", nlohmann::json::object());
  check_keys(model, {"path", "zoo"}, where + ".model");
  c.model_path = get_or<std::string>(model, "path", "", where + ".model");
  c.model_zoo = get_or<std::string>(model, "zoo", "", where + ".model");
  if (c.model_path.empty() && c.model_zoo.empty())
    throw ConfigError(where +
                      ".model needs \"path\" (a trained network file) or \"zoo\" (a zoo "
                      "name, random weights)");

  const auto data = j.value("data", nlohmann::json::object());
  check_keys(data, {"dir", "validation_count"}, where + ".data");
  c.data_dir = get_or<std::string>(data, "dir", datasets::kFashionMnistDir, where + ".data");
  c.validation_count = get_or(data, "validation_count", c.validation_count, where + ".data");

  c.space = SpaceConfig::from_json(j.value("space", nlohmann::json()), where + ".space");

  auto [strategy, strategy_rest] =
      named_section(j.value("strategy", nlohmann::json()), c.strategy, where + ".strategy");
  c.strategy = strategy;
  c.ask_batch = get_or(strategy_rest, "ask_batch", c.ask_batch, where + ".strategy");
  strategy_rest.erase("ask_batch");
  if (c.ask_batch < 1) throw ConfigError(where + ".strategy.ask_batch must be >= 1");
  c.strategy_config = strategy_rest;

  auto [evaluator, evaluator_rest] =
      named_section(j.value("evaluator", nlohmann::json()), c.evaluator, where + ".evaluator");
  c.evaluator = evaluator;
  c.evaluator_config = evaluator_rest;

  auto [target, target_rest] =
      named_section(j.value("target", nlohmann::json()), c.target, where + ".target");
  c.target = target;
  c.measure = targets::MeasureOptions::from_json(target_rest, where + ".target");
  return c;
}

SearchConfig SearchConfig::load(const std::string& path) {
  return from_json(read_json_file(path), path);
}

}  // namespace tightfit::search
