#include "search/config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/hash.h"
#include "core/json.h"
#include "datasets/dataset.h"
#include "evaluators/finetune.h"
#include "graph/serialize.h"
#include "models/loader.h"
#include "search/screen.h"
#include "targets/libtorch_int8.h"

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

/// The model section: {"path": FILE} or {"zoo": NAME}.
struct ModelSection {
  std::string path, zoo;
  std::vector<int64_t> input_shape;  ///< C, H, W for an imported (TorchScript) model
  template <typename Fields>
  void fields(Fields& f) {
    f("path", path);
    f("zoo", zoo);
    f("input_shape", input_shape);
  }
};

struct OutputsSection {
  std::string export_format;
  template <typename Fields>
  void fields(Fields& f) {
    f("export", export_format);
  }
};

struct BaselinesSection {
  std::vector<double> keep = SearchConfig().baseline_keep;
  template <typename Fields>
  void fields(Fields& f) {
    f("keep", keep);
  }
};

/// The sections of the config file, in the order they are parsed.
const std::vector<std::string> kSections = {
    "seed", "model",  "data",      "space", "strategy",       "evaluator", "target",
    "cost", "budget", "baselines", "cache", "finetune_front", "screen",    "outputs"};

void parse_model(const nlohmann::json& j, const std::string& where, SearchConfig& c) {
  const auto model = read_section<ModelSection>(j.value("model", nlohmann::json::object()), where);
  c.model_path = model.path;
  c.model_zoo = model.zoo;
  if (!model.input_shape.empty()) {
    if (model.input_shape.size() != 3 ||
        std::any_of(model.input_shape.begin(), model.input_shape.end(),
                    [](int64_t d) { return d < 1 || d > (1 << 16); }))
      throw ConfigError(where +
                        ".input_shape must be [C, H, W] of positive sizes, e.g. [3, 224, 224]");
    c.model_input_shape = model.input_shape;
  }
  if (c.model_path.empty() && c.model_zoo.empty())
    throw ConfigError(where +
                      " needs \"path\" (a trained network file) or \"zoo\" (a zoo "
                      "name, random weights)");
}

void parse_data(const nlohmann::json& j, const std::string& where, SearchConfig& c) {
  auto [dataset, rest] = named_section(j.value("data", nlohmann::json()), c.dataset, where);
  c.dataset = dataset;
  c.validation_count = get_or(rest, "validation_count", c.validation_count, where);
  rest.erase("validation_count");
  c.dataset_config = rest;
  // The data set's own settings are checked now, long before anything is read.
  datasets::make_dataset(c.dataset, c.dataset_config, {where});
}

/// The strategy, evaluator and target sections: a plugin's name, a key of the search's own
/// (ask_batch, parallel), and the plugin's settings.
void parse_plugins(const nlohmann::json& j, const std::string& where, SearchConfig& c) {
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
}

/// finetune_front and screen: optional sections kept as written, checked by their own parsers.
void parse_optional(const nlohmann::json& j, const std::string& where, SearchConfig& c) {
  if (j.contains("finetune_front")) {
    const auto& section = j.at("finetune_front");
    if (section.is_null()) {
      c.front_top_k = 0;
    } else if (!section.is_object()) {
      throw ConfigError(where + ".finetune_front must be an object of finetune settings and " +
                        "\"top_k\", e.g. {\"top_k\": 5, \"steps\": 50}, or null for none");
    } else {
      nlohmann::json settings = kFrontFinetuneDefaults;
      settings.update(section);
      if (settings.contains("top_k")) {
        c.front_top_k = get_or<int64_t>(settings, "top_k", 0, where + ".finetune_front");
        if (c.front_top_k < 0)
          throw ConfigError(where + ".finetune_front.top_k is " + std::to_string(c.front_top_k) +
                            "; give the number of front members to fine-tune (0 for none)");
        settings.erase("top_k");
      }
      const auto parsed =
          evaluators::FinetuneConfig::from_json(settings, where + ".finetune_front");
      if (parsed.steps == 0) c.front_top_k = 0;
      c.finetune_front = settings;
    }
  }
  if (j.contains("screen")) {
    c.screen = j.at("screen");
    ScreenConfig::from_json(c.screen, where + ".screen");
  }
}

}  // namespace

SearchConfig SearchConfig::from_json(const nlohmann::json& j, const std::string& where) {
  check_keys(j, kSections, where);
  SearchConfig c;
  c.raw = j;
  c.hash = fnv1a_hex(j.dump());
  c.seed = get_or(j, "seed", c.seed, where);
  parse_model(j, where + ".model", c);
  parse_data(j, where + ".data", c);
  c.space = SpaceConfig::from_json(j.value("space", nlohmann::json()), where + ".space");
  parse_plugins(j, where, c);
  c.cost = latency_models::CostSection::from_json(j.value("cost", nlohmann::json::object()),
                                                  where + ".cost");
  c.cache_path = get_or<std::string>(j, "cache", "", where);
  c.budget = Budget::from_json(j.value("budget", nlohmann::json::object()), where + ".budget");
  c.baseline_keep = read_section<BaselinesSection>(j.value("baselines", nlohmann::json::object()),
                                                   where + ".baselines")
                        .keep;
  for (double k : c.baseline_keep)
    if (!(k > 0 && k <= 1)) throw ConfigError(where + ".baselines.keep values must be in (0, 1]");
  parse_optional(j, where, c);
  c.export_format =
      read_section<OutputsSection>(j.value("outputs", nlohmann::json::object()), where + ".outputs")
          .export_format;
  if (!c.export_format.empty() && c.export_format != "torchscript" &&
      c.export_format != "torchscript-int8")
    throw ConfigError(where + ".outputs.export is '" + c.export_format +
                      "'; valid: \"torchscript\", \"torchscript-int8\" (int8 layers as LibTorch's "
                      "quantized ops, as `tightfit export --int8`), or leave it out for .tfn files "
                      "only");
  if (c.export_format == "torchscript-int8" && !targets::LibTorchInt8Model::supported())
    throw ConfigError(where +
                      ".outputs.export is \"torchscript-int8\", but this LibTorch has no "
                      "onednn quantized engine; use \"torchscript\"");
  return c;
}

Budget Budget::from_json(const nlohmann::json& j, const std::string& where) {
  const auto b = read_section<Budget>(j, where);
  if (j.is_object())
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it->is_number() && it->get<double>() == 0)
        throw ConfigError(where + "." + it.key() +
                          " is 0, which no candidate meets; give a positive limit, or leave "
                          "the key out for none");
  if (b.latency_ms < 0 || b.size_bytes < 0 || b.flops < 0 || b.accuracy_drop < 0 ||
      b.accuracy_drop >= 1)
    throw ConfigError(where +
                      " limits must be positive (accuracy_drop a fraction below 1), e.g. "
                      "{\"latency_ms\": 0.5}");
  for (const auto& [key, v] :
       {std::pair<const char*, double>{"latency_fraction", b.latency_fraction},
        {"size_fraction", b.size_fraction},
        {"flops_fraction", b.flops_fraction}})
    if (v < 0 || v > 1)
      throw ConfigError(where + "." + key + " is " + nlohmann::json(v).dump() +
                        "; a fraction of the uncompressed network's figure must be in (0, 1] "
                        "(0.5: half of it)");
  return b;
}

Budget Budget::resolved(double base_latency_ms, int64_t base_size_bytes, int64_t base_flops) const {
  Budget b = *this;
  const auto stricter = [](double limit, double relative) {
    return limit > 0 ? std::min(limit, relative) : relative;
  };
  if (latency_fraction > 0) b.latency_ms = stricter(latency_ms, latency_fraction * base_latency_ms);
  if (size_fraction > 0)
    b.size_bytes = static_cast<int64_t>(
        stricter(static_cast<double>(size_bytes),
                 std::floor(size_fraction * static_cast<double>(base_size_bytes))));
  if (flops_fraction > 0)
    b.flops = static_cast<int64_t>(stricter(
        static_cast<double>(flops), std::floor(flops_fraction * static_cast<double>(base_flops))));
  return b;
}

nlohmann::json Budget::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  if (latency_ms > 0) j["latency_ms"] = latency_ms;
  if (size_bytes > 0) j["size_bytes"] = size_bytes;
  if (flops > 0) j["flops"] = flops;
  if (accuracy_drop > 0) j["accuracy_drop"] = accuracy_drop;
  if (latency_fraction > 0) j["latency_fraction"] = latency_fraction;
  if (size_fraction > 0) j["size_fraction"] = size_fraction;
  if (flops_fraction > 0) j["flops_fraction"] = flops_fraction;
  return j;
}

SearchConfig SearchConfig::load(const std::string& path) {
  return from_json(read_json_file(path), path);
}

graph::Network SearchConfig::load_network() const {
  return model_path.empty() ? models::load_zoo_model(model_zoo)
                            : models::load_model_file(model_path, model_input_shape);
}

datasets::Split SearchConfig::load_data() const {
  datasets::SplitOptions split;
  split.validation_count = validation_count;
  return datasets::make_dataset(dataset, dataset_config)->load(split);
}

}  // namespace tightfit::search
