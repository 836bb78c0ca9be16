// The cost-model registry and the `cost` config section. A new cost model is one file and one
// line in register_builtin_cost_models().

#include "core/registry.h"

#include <algorithm>

#include "latency_models/analytic.h"
#include "latency_models/cost_models.h"

namespace tightfit::latency_models {

namespace {

using CostRegistry = Registry<CostModel, CostContext>;

void register_builtin_cost_models(CostRegistry& r) {
  r.add("measure", [](const nlohmann::json&, const CostContext& c) -> std::unique_ptr<CostModel> {
    return std::make_unique<MeasuredCost>(*c.target, c.measure);
  });
  r.add("lut", [](const nlohmann::json& j, const CostContext& c) -> std::unique_ptr<CostModel> {
    return std::make_unique<TableCost>(j.at("table").get<std::string>(), c);
  });
  r.add("roofline", [](const nlohmann::json& j, const CostContext& c) {
    return make_roofline_cost(j.at("device"), c.measure);
  });
  r.add("bitfusion", [](const nlohmann::json& j, const CostContext& c) {
    return make_bitfusion_cost(j.at("device"), c.measure);
  });
}

const CostRegistry& registry() {
  return builtin_registry("cost model", "cost models", register_builtin_cost_models);
}

}  // namespace

std::vector<std::string> cost_model_names() {
  // Measured first: it is the default and the reference the others are judged against; then
  // the table measured on the target, then the analytic models.
  auto names = registry().names();
  const std::vector<std::string> first = {"measure", "lut"};
  std::stable_partition(names.begin(), names.end(), [&](const auto& n) {
    return std::find(first.begin(), first.end(), n) != first.end();
  });
  std::stable_partition(names.begin(), names.end(), [](const auto& n) { return n == "measure"; });
  return names;
}

CostSection CostSection::from_json(const nlohmann::json& j, const std::string& where) {
  // "table" is accepted beside "measure" too: a config can switch models by one word.
  check_keys(j, section_keys<CostSection>(), where);  // null is not a section here
  auto c = read_section<CostSection>(j, where);
  c.raw = j;
  if (!registry().contains(c.latency))
    throw ConfigError(where + ".latency is '" + c.latency +
                      "'; valid values: " + join(cost_model_names()));
  if (c.latency == "lut" && c.table.empty())
    throw ConfigError(where +
                      ".table is missing: \"lut\" cost needs the latency table's path "
                      "(profiled there first when the file does not exist)");
  // The device figures are checked now; measuring the machine waits for the model.
  if (c.latency == "roofline") RooflineSpec::from_json(c.device, where + ".device");
  if (c.latency == "bitfusion") BitFusionSpec::from_json(c.device, where + ".device");
  return c;
}

std::unique_ptr<CostModel> make_cost_model(const CostSection& section, const CostContext& context) {
  TIGHTFIT_CHECK(context.target && context.net, "cost model context without target or network");
  return registry().make(section.latency, {{"table", section.table}, {"device", section.device}},
                         context);
}

}  // namespace tightfit::latency_models
