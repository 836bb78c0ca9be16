// The evaluator registry. A new accuracy proxy is one file under evaluators/ and one line in
// register_builtin_evaluators().

#include "core/registry.h"

#include "evaluators/bn_recal.h"
#include "evaluators/finetune.h"
#include "evaluators/pruningnet.h"

namespace tightfit::evaluators {

namespace {

/// What an evaluator may use besides its own config section.
struct EvaluatorContext {
  const datasets::Split& data;  ///< must outlive the evaluator
};

using EvaluatorRegistry = Registry<AccuracyEvaluator, EvaluatorContext>;

void register_builtin_evaluators(EvaluatorRegistry& r) {
  r.add("bn-recal", [](const nlohmann::json& j, const EvaluatorContext& c) {
    return std::make_unique<BnRecalEvaluator>(BnRecalConfig::from_json(j, "evaluator.bn-recal"),
                                              c.data, "bn-recal");
  });
  r.add("finetune", [](const nlohmann::json& j, const EvaluatorContext& c) {
    return std::make_unique<FinetuneEvaluator>(FinetuneConfig::from_json(j, "evaluator.finetune"),
                                               c.data);
  });
  r.add("pruningnet", [](const nlohmann::json& j, const EvaluatorContext& c) {
    return std::make_unique<PruningNetEvaluator>(
        PruningNetEvaluatorConfig::from_json(j, "evaluator.pruningnet"), c.data);
  });
  r.add("subset", [](const nlohmann::json& j, const EvaluatorContext& c) {
    auto config = BnRecalConfig::from_json(j, "evaluator.subset");
    if (j.contains("bn_batches") && config.bn_batches != 0)
      throw ConfigError("evaluator.subset does not recalibrate BN; use bn-recal");
    config.bn_batches = 0;
    return std::make_unique<BnRecalEvaluator>(config, c.data, "subset");
  });
}

const EvaluatorRegistry& registry() {
  return builtin_registry("evaluator", "evaluators", register_builtin_evaluators);
}

}  // namespace

std::vector<std::string> evaluator_names() { return registry().names(); }

void check_evaluator_config(const std::string& name, const nlohmann::json& config) {
  // Evaluators only keep a reference to their data when built: an empty split checks the
  // config (and a PruningNet file's header) without reading any image.
  static const datasets::Split kNoData;
  registry().make(name, config, {kNoData});
}

std::unique_ptr<AccuracyEvaluator> make_evaluator(const std::string& name,
                                                  const nlohmann::json& config,
                                                  const datasets::Split& data) {
  return registry().make(name, config, {data});
}

}  // namespace tightfit::evaluators
