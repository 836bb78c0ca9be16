#pragma once
// The built-in cost models (cost_model.h), one file each: measure.cpp, lut_cost.cpp. Their
// registry and the `cost` config section are in registry.cpp.

#include <string>

#include "latency_models/cost_model.h"
#include "latency_models/lut.h"

namespace tightfit::latency_models {

class MeasuredCost : public CostModel {
 public:
  /// `target` must outlive the model.
  MeasuredCost(targets::Target& target, targets::MeasureOptions opts);
  std::string name() const override { return "measure"; }
  std::string source() const override { return "measured"; }
  bool times_on_target() const override { return true; }
  std::vector<LatencyEstimate> predict(
      const std::vector<const policies::CompressedNetwork*>& candidates) override;
  nlohmann::json describe() const override { return nlohmann::json::object(); }
  std::string fingerprint() const override { return ""; }

 private:
  targets::Target& target_;
  targets::MeasureOptions opts_;
};

class TableCost : public CostModel {
 public:
  /// Loads the table at `path`, or profiles it on `context.target` and saves it there.
  TableCost(const std::string& path, const CostContext& context);
  std::string name() const override { return "lut"; }
  std::string source() const override { return "lut"; }
  bool times_on_target() const override { return false; }
  std::vector<LatencyEstimate> predict(
      const std::vector<const policies::CompressedNetwork*>& candidates) override;
  nlohmann::json describe() const override;
  std::string fingerprint() const override;
  nlohmann::json accuracy() const override { return table_.accuracy(); }
  const LookupTable& table() const { return table_; }

 private:
  std::string path_;
  LookupTable table_;
};

}  // namespace tightfit::latency_models
