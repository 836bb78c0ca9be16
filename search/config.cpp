#include "search/config.h"

#include <cstdio>

#include "datasets/dataset.h"
#include "evaluators/finetune.h"
#include "core/hash.h"
#include "core/json.h"
#include "graph/serialize.h"
#include "models/loader.h"
#include "search/screen.h"

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
  check_keys(j,
             {"seed", "model", "data", "space", "strategy", "evaluator", "target", "cost", "budget",
              "baselines", "cache", "finetune_front", "screen"},
             where);
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

  auto [dataset, data_rest] = named_section(j.value("data", nlohmann::json()), c.dataset, where + ".data");
  c.dataset = dataset;
  c.validation_count = get_or(data_rest, "validation_count", c.validation_count, where + ".data");
  data_rest.erase("validation_count");
  c.dataset_config = data_rest;
  // The data set's own settings are checked now, long before anything is read.
  datasets::make_dataset(c.dataset, c.dataset_config, {where + ".data"});

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
  c.parallel_evaluations =
      get_or(evaluator_rest, "parallel", c.parallel_evaluations, where + ".evaluator");
  evaluator_rest.erase("parallel");
  if (c.parallel_evaluations < 1) throw ConfigError(where + ".evaluator.parallel must be >= 1");
  c.evaluator_config = evaluator_rest;

  auto [target, target_rest] =
      named_section(j.value("target", nlohmann::json()), c.target, where + ".target");
  c.target = target;
  c.measure = targets::MeasureOptions::from_json(target_rest, where + ".target");

  c.cost = latency_models::CostSection::from_json(j.value("cost", nlohmann::json::object()),
                                                  where + ".cost");

  c.cache_path = get_or<std::string>(j, "cache", "", where);

  const auto budget = j.value("budget", nlohmann::json::object());
  const std::string bw = where + ".budget";
  check_keys(budget, {"latency_ms", "size_bytes", "flops", "accuracy_drop"}, bw);
  c.budget.latency_ms = get_or(budget, "latency_ms", 0.0, bw);
  c.budget.size_bytes = get_or<int64_t>(budget, "size_bytes", 0, bw);
  c.budget.flops = get_or<int64_t>(budget, "flops", 0, bw);
  c.budget.accuracy_drop = get_or(budget, "accuracy_drop", 0.0, bw);
  if (c.budget.latency_ms < 0 || c.budget.size_bytes < 0 || c.budget.flops < 0 ||
      c.budget.accuracy_drop < 0 || c.budget.accuracy_drop >= 1)
    throw ConfigError(bw +
                      " limits must be positive (accuracy_drop a fraction below 1), e.g. "
                      "{\"latency_ms\": 0.5}");

  const auto baselines = j.value("baselines", nlohmann::json::object());
  check_keys(baselines, {"keep"}, where + ".baselines");
  c.baseline_keep = get_or(baselines, "keep", c.baseline_keep, where + ".baselines");
  for (double k : c.baseline_keep)
    if (!(k > 0 && k <= 1)) throw ConfigError(where + ".baselines.keep values must be in (0, 1]");
  if (j.contains("finetune_front")) {
    c.finetune_front = j.at("finetune_front");
    if (!c.finetune_front.is_object())
      throw ConfigError(where + ".finetune_front must be an object of finetune settings, e.g. " +
                        "{\"steps\": 500, \"distill\": true}");
    evaluators::FinetuneConfig::from_json(c.finetune_front, where + ".finetune_front");
  }
  if (j.contains("screen")) {
    c.screen = j.at("screen");
    ScreenConfig::from_json(c.screen, where + ".screen");
  }
  return c;
}

nlohmann::json Budget::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  if (latency_ms > 0) j["latency_ms"] = latency_ms;
  if (size_bytes > 0) j["size_bytes"] = size_bytes;
  if (flops > 0) j["flops"] = flops;
  if (accuracy_drop > 0) j["accuracy_drop"] = accuracy_drop;
  return j;
}

SearchConfig SearchConfig::load(const std::string& path) {
  return from_json(read_json_file(path), path);
}

graph::Network SearchConfig::load_network() const {
  return model_path.empty() ? models::load_zoo_model(model_zoo) : models::load_model_file(model_path);
}

datasets::Split SearchConfig::load_data() const {
  datasets::SplitOptions split;
  split.validation_count = validation_count;
  return datasets::make_dataset(dataset, dataset_config)->load(split);
}

}  // namespace tightfit::search
