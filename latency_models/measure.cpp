// The `measure` cost model: every candidate timed end to end on the target, under the target's
// process-wide measurement lock (invariant 3). Exact for this machine and slow; the front needs
// no second measurement.

#include "latency_models/cost_models.h"

namespace tightfit::latency_models {

MeasuredCost::MeasuredCost(targets::Target& target, targets::MeasureOptions opts)
    : target_(target), opts_(std::move(opts)) {}

std::vector<LatencyEstimate> MeasuredCost::predict(
    const std::vector<const policies::CompressedNetwork*>& candidates) {
  std::vector<LatencyEstimate> out;
  for (const auto* c : candidates) {
    const auto m = target_.measure(*c, opts_);
    LatencyEstimate e;
    if (m.ok()) {
      e.ms = m.median_ms;
      e.spread_ms = m.iqr_ms;
    } else {
      e.error = "latency: " + m.error;
    }
    out.push_back(e);
  }
  return out;
}

}  // namespace tightfit::latency_models
