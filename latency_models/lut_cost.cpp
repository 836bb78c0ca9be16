// The `lut` cost model: latency predicted by a lookup table profiled on the target. A table that
// is missing is profiled first (every layer configuration the space reaches, then calibrated on
// whole networks) and saved, so the next run loads it; a table made for another target,
// precision or network structure is refused with the mismatch named.

#include <filesystem>

#include "core/errors.h"
#include "core/hash.h"
#include "latency_models/cost_models.h"

namespace tightfit::latency_models {

namespace {
/// Layers are timed for at most this long each when a search profiles its own table: a search
/// that stalls minutes on profiling before its first evaluation is worse than a slightly noisier
/// table (`tightfit profile` times as long as asked).
constexpr double kSearchLayerMs = 50.0;
}  // namespace

TableCost::TableCost(const std::string& path, const CostContext& context) : path_(path) {
  const auto expected =
      LutContext::of(context.target->name(), context.measure, context.model, *context.net);
  if (std::filesystem::exists(path)) {
    table_ = LookupTable::load(path, expected);
    if (table_.entries().empty() || table_.scale() <= 0)
      throw InputError("latency table '" + path +
                       "' is not calibrated; finish it with `tightfit profile`");
    if (table_.version() == kLutFormatVersion) return;
  }
  if (context.say)
    context.say("profiling a latency table into " + path +
                (std::filesystem::exists(path) ? " (made by an older tightfit)" : " (missing)"));
  table_ = LookupTable(expected);
  if (!context.channel_curves.empty()) {
    table_.channel_curves() = context.channel_curves;
    table_.set_preferred_channel_multiple(preferred_multiple(context.channel_curves));
  }
  targets::MeasureOptions layer_opts = context.measure;
  layer_opts.min_time_ms = std::min(layer_opts.min_time_ms, kSearchLayerMs);
  build_table(table_, *context.net, context.reach, context.calibration_policies(), *context.target,
              layer_opts, context.measure, {});
  const std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  table_.save(path);
}

std::vector<LatencyEstimate> TableCost::predict(
    const std::vector<const policies::CompressedNetwork*>& candidates) {
  std::vector<LatencyEstimate> out(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    try {
      out[i].ms = table_.predict({candidates[i]}).front();
    } catch (const std::exception& e) {
      out[i].error = e.what();  // a layer the table lacks: this candidate fails, the run goes on
    }
  }
  return out;
}

nlohmann::json TableCost::describe() const {
  return {{"path", path_},
          {"entries", table_.entries().size()},
          {"scale", table_.scale()},
          {"offset_ms", table_.offset_ms()}};
}

std::string TableCost::fingerprint() const {
  return fnv1a_hex(nlohmann::json(table_.entries()).dump() + std::to_string(table_.scale()) +
                   std::to_string(table_.offset_ms()));
}

}  // namespace tightfit::latency_models
