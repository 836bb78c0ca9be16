#pragma once
// Latency models predict a candidate's latency on a target without running it (lookup tables
// profiled on the target, analytic models). The skeleton measures every candidate directly on
// the target; this interface is what the search will call once predictors exist.

#include <string>
#include <vector>

#include "policies/compress.h"

namespace tightfit::latency_models {

class LatencyModel {
 public:
  virtual ~LatencyModel() = default;
  virtual std::string name() const = 0;
  /// Predicted latency per candidate, in ms; lower is better.
  virtual std::vector<double> predict(
      const std::vector<const policies::CompressedNetwork*>& candidates) = 0;
};

}  // namespace tightfit::latency_models
