// The evaluator registry: names to factories. Built-ins are listed here explicitly (static
// self-registration would be dropped by the linker from a static library).

#include <functional>
#include <map>

#include "evaluators/bn_recal.h"
#include "evaluators/finetune.h"
#include "evaluators/pruningnet.h"
#include "core/json.h"

namespace tightfit::evaluators {

namespace {
using Factory = std::function<std::unique_ptr<AccuracyEvaluator>(const nlohmann::json&,
                                                                 const datasets::Split&)>;

const std::map<std::string, Factory>& registry() {
  static const std::map<std::string, Factory> r = {
      {"bn-recal",
       [](const nlohmann::json& j, const datasets::Split& d) {
         return std::make_unique<BnRecalEvaluator>(
             BnRecalConfig::from_json(j, "evaluator.bn-recal"), d, "bn-recal");
       }},
      {"finetune",
       [](const nlohmann::json& j, const datasets::Split& d) {
         return std::make_unique<FinetuneEvaluator>(
             FinetuneConfig::from_json(j, "evaluator.finetune"), d);
       }},
      {"pruningnet",
       [](const nlohmann::json& j, const datasets::Split& d) {
         return std::make_unique<PruningNetEvaluator>(
             PruningNetEvaluatorConfig::from_json(j, "evaluator.pruningnet"), d);
       }},
      {"subset",
       [](const nlohmann::json& j, const datasets::Split& d) {
         auto c = BnRecalConfig::from_json(j, "evaluator.subset");
         if (j.contains("bn_batches") && c.bn_batches != 0)
           throw ConfigError("evaluator.subset does not recalibrate BN; use bn-recal");
         c.bn_batches = 0;
         return std::make_unique<BnRecalEvaluator>(c, d, "subset");
       }},
  };
  return r;
}
}  // namespace

std::vector<std::string> evaluator_names() {
  std::vector<std::string> names;
  for (const auto& [name, f] : registry()) names.push_back(name);
  return names;
}

std::unique_ptr<AccuracyEvaluator> make_evaluator(const std::string& name,
                                                  const nlohmann::json& config,
                                                  const datasets::Split& data) {
  auto it = registry().find(name);
  if (it == registry().end())
    throw ConfigError("unknown evaluator '" + name +
                      "'; valid evaluators: " + join(evaluator_names()));
  return it->second(config, data);
}

}  // namespace tightfit::evaluators
