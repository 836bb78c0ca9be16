#include "latency_models/channel_curve.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/errors.h"
#include "latency_models/lut.h"

namespace tightfit::latency_models {

namespace {

bool depthwise(const LayerKey& k) {
  return k.groups > 1 && k.groups == k.in_channels && k.groups == k.out_channels;
}

/// Multiply-accumulates of one image through `k`.
double layer_macs(const LayerKey& k) {
  const auto out_size = [](int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                           int64_t dilation) {
    return (in + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
  };
  const double out_hw =
      static_cast<double>(out_size(k.in_h, k.kernel_h, k.stride_h, k.pad_h, k.dilation_h)) *
      static_cast<double>(out_size(k.in_w, k.kernel_w, k.stride_w, k.pad_w, k.dilation_w));
  return static_cast<double>(k.out_channels) * static_cast<double>(k.in_channels / k.groups) *
         static_cast<double>(k.kernel_h * k.kernel_w) * (k.op == "conv2d" ? out_hw : 1.0);
}

}  // namespace

int64_t round_up(int64_t channels, int64_t multiple) {
  TIGHTFIT_CHECK(multiple >= 1, "multiple " << multiple);
  return (channels + multiple - 1) / multiple * multiple;
}

std::vector<int64_t> curve_channels(int64_t channels, const CurveOptions& opts) {
  TIGHTFIT_CHECK(channels >= 1 && opts.max_points >= 1,
                 "channels " << channels << ", max_points " << opts.max_points);
  const int64_t lo = std::max<int64_t>(1, std::min(channels / 2, channels - opts.max_points + 1));
  const int64_t hi = std::min(channels, lo + opts.max_points - 1);
  std::vector<int64_t> counts;
  for (int64_t c = lo; c <= hi; ++c) counts.push_back(c);
  return counts;
}

std::vector<LayerKey> curve_layers(const graph::Network& net, size_t count) {
  struct Candidate {
    LayerKey key;
    double macs;
    size_t order;
  };
  std::vector<Candidate> candidates;
  std::set<std::string> seen;
  for (const auto& k : layer_keys(net)) {
    if (k.out_channels < 2 || (k.groups != 1 && !depthwise(k))) continue;
    if (!seen.insert(k.str()).second) continue;
    candidates.push_back({k, layer_macs(k), candidates.size()});
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.macs != b.macs) return a.macs > b.macs;
    if (a.key.out_channels != b.key.out_channels) return a.key.out_channels > b.key.out_channels;
    return a.order < b.order;
  });
  // One layer per output width first, among the layers doing at least kComparableWork of the
  // largest one's work: layers of similar work (ResNet stages) at different widths and
  // resolutions, so one odd kernel choice does not decide the multiple alone.
  constexpr double kComparableWork = 0.25;
  std::vector<LayerKey> keys;
  std::set<int64_t> widths;
  std::vector<bool> taken(candidates.size(), false);
  for (size_t i = 0; i < candidates.size() && keys.size() < count; ++i)
    if (candidates[i].macs >= kComparableWork * candidates.front().macs &&
        widths.insert(candidates[i].key.out_channels).second) {
      keys.push_back(candidates[i].key);
      taken[i] = true;
    }
  for (size_t i = 0; i < candidates.size() && keys.size() < count; ++i)
    if (!taken[i]) keys.push_back(candidates[i].key);
  return keys;
}

ChannelCurve measure_channel_curve(const LayerKey& key, targets::Target& target,
                                   const targets::MeasureOptions& measure,
                                   const CurveOptions& opts) {
  TIGHTFIT_CHECK(opts.rounds >= 1, "rounds " << opts.rounds);
  const bool dw = depthwise(key);
  const auto counts = curve_channels(key.out_channels, opts);
  std::vector<policies::CompressedNetwork> layers(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) {
    LayerKey k = key;
    k.out_channels = counts[i];
    if (dw) k.in_channels = k.groups = counts[i];
    layers[i].net = layer_network(k, measure.precision);
  }
  // Timed as profile() times table entries (the layer's own kernel), in interleaved rounds that
  // share the timed time of one measurement: a stretch of slow machine (another process, a
  // frequency drop) then lands on different counts in each round, and the fastest round of a
  // count, whose median was least disturbed, is kept.
  targets::MeasureOptions round_opts = measure;
  round_opts.kernel = kLayerNode;
  round_opts.min_time_ms = measure.min_time_ms / static_cast<double>(opts.rounds);
  ChannelCurve curve;
  curve.layer = key.str();
  curve.points.resize(counts.size());
  for (int64_t round = 0; round < opts.rounds; ++round)
    for (size_t i = 0; i < counts.size(); ++i) {
      const auto m = target.measure(layers[i], round_opts);
      if (!m.ok())
        throw InputError("timing layer " + key.str() + " at " + std::to_string(counts[i]) +
                         " channels failed: " + m.error);
      auto& point = curve.points[i];
      if (round == 0 || m.median_ms < point.median_ms) point = {counts[i], m.median_ms, m.iqr_ms};
    }
  return curve;
}

int64_t preferred_multiple(const std::vector<ChannelCurve>& curves, const MultipleRule& rule) {
  int64_t best = 1;
  for (int64_t m : kCandidateMultiples) {
    if (m == 1) continue;
    int64_t tested = 0, failed = 0;
    for (const auto& curve : curves) {
      std::map<int64_t, const CurvePoint*> at;
      for (const auto& p : curve.points) at[p.channels] = &p;
      for (const auto& p : curve.points) {
        if (p.channels % m == 0) continue;
        const auto r = at.find(round_up(p.channels, m));
        if (r == at.end()) continue;  // the round-up was not measured: no evidence either way
        const CurvePoint& up = *r->second;
        const double allowed =
            p.median_ms * (1.0 + rule.tolerance) + rule.noise_iqrs * 0.5 * (p.iqr_ms + up.iqr_ms);
        ++tested;
        failed += up.median_ms > allowed;
      }
    }
    if (tested < rule.min_tested) break;
    if (static_cast<double>(failed) > rule.max_fail_share * static_cast<double>(tested)) break;
    best = m;
  }
  return best;
}

nlohmann::json curves_to_json(const std::vector<ChannelCurve>& curves) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& curve : curves) {
    nlohmann::json points = nlohmann::json::array();
    for (const auto& p : curve.points) points.push_back({p.channels, p.median_ms, p.iqr_ms});
    j[curve.layer] = std::move(points);
  }
  return j;
}

std::vector<ChannelCurve> curves_from_json(const nlohmann::json& j, const std::string& where) {
  const auto bad = [&](const std::string& why) {
    return InputError(where + " has a malformed channel_curves entry (" + why + "); profile again");
  };
  if (!j.is_object()) throw bad("not an object of layer: [[channels, ms], ...]");
  std::vector<ChannelCurve> curves;
  for (const auto& [layer, points] : j.items()) {
    ChannelCurve curve;
    curve.layer = layer;
    if (!points.is_array()) throw bad(layer + " is not a list of points");
    for (const auto& p : points) {
      if (!p.is_array() || p.size() < 2 || p.size() > 3 || !p[0].is_number_integer() ||
          !p[1].is_number() || (p.size() == 3 && !p[2].is_number()))
        throw bad(layer + " has the point " + p.dump() +
                  "; expected [channels, median_ms] or [channels, median_ms, iqr_ms]");
      CurvePoint point{p[0].get<int64_t>(), p[1].get<double>(),
                       p.size() == 3 ? p[2].get<double>() : 0.0};
      if (point.channels < 1 || !std::isfinite(point.median_ms) || point.median_ms < 0 ||
          !std::isfinite(point.iqr_ms) || point.iqr_ms < 0)
        throw bad(layer + " has the point " + p.dump());
      if (!curve.points.empty() && point.channels <= curve.points.back().channels)
        throw bad(layer + " has channel counts out of order");
      curve.points.push_back(point);
    }
    curves.push_back(std::move(curve));
  }
  return curves;
}

}  // namespace tightfit::latency_models
