#include "policies/compress.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "graph/channels.h"
#include "graph/errors.h"

namespace tightfit::policies {

namespace {

/// Copy of `t` keeping only `idx` (sorted, unique) along dimension `dim`.
graph::Tensor select(const graph::Tensor& t, size_t dim, const std::vector<int64_t>& idx) {
  graph::Tensor out;
  out.shape = t.shape;
  out.shape[dim] = static_cast<int64_t>(idx.size());
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < dim; ++d) outer *= t.shape[d];
  for (size_t d = dim + 1; d < t.shape.size(); ++d) inner *= t.shape[d];
  const int64_t n = t.shape[dim];
  out.data.resize(static_cast<size_t>(outer * idx.size() * inner));
  float* dst = out.data.data();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i : idx) {
      const float* src = t.data.data() + (o * n + i) * inner;
      dst = std::copy(src, src + inner, dst);
    }
  return out;
}

bool is_all(const std::vector<int64_t>& idx, int64_t n) {
  return static_cast<int64_t>(idx.size()) == n;
}

/// L1 norm of each output channel's weights, divided by their count so that layers of different
/// fan-in (a 3x3 conv and a 1x1 shortcut in the same residual group) weigh alike.
std::vector<double> filter_l1(const graph::Tensor& w) {
  const int64_t out = w.shape[0];
  const int64_t per = w.numel() / out;
  std::vector<double> norms(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    double s = 0;
    for (int64_t k = 0; k < per; ++k) s += std::fabs(w.data[o * per + k]);
    norms[o] = s / static_cast<double>(per);
  }
  return norms;
}

}  // namespace

int64_t channels_to_keep(int64_t channels, double fraction, int64_t multiple) {
  // Keeping everything needs no rounding: rounding 10 channels to a multiple of 8 would prune
  // a group the policy leaves alone (invariant 1).
  if (fraction >= 1.0) return channels;
  multiple = std::max<int64_t>(1, multiple);
  int64_t k = static_cast<int64_t>(std::llround(fraction * static_cast<double>(channels)));
  k = (k + multiple / 2) / multiple * multiple;  // nearest multiple
  k = std::max(k, std::min(multiple, channels));
  return std::clamp<int64_t>(k, 1, channels);
}

void fake_quantize_per_channel(graph::Tensor& w, int bits) {
  TIGHTFIT_CHECK(bits >= 2 && bits <= 16, "bits " << bits);
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  const int64_t out = w.shape.at(0);
  const int64_t per = w.numel() / out;
  for (int64_t o = 0; o < out; ++o) {
    float* p = w.data.data() + o * per;
    float amax = 0.0f;
    for (int64_t k = 0; k < per; ++k) amax = std::max(amax, std::fabs(p[k]));
    if (amax == 0.0f) continue;
    const float scale = amax / qmax;
    for (int64_t k = 0; k < per; ++k)
      p[k] = std::clamp(std::nearbyint(p[k] / scale), -qmax, qmax) * scale;
  }
}

CompressedNetwork apply(const graph::Network& net, const Policy& policy, const ApplyOptions& opts) {
  const graph::ChannelAnalysis ca = graph::analyze_channels(net);
  validate(policy, decision_points(net, ca));
  CompressedNetwork result;
  result.policy = policy;

  // Which channels each group keeps (empty = all): rank by summed, normalized filter L1 norm.
  std::vector<std::vector<int64_t>> kept(ca.groups.size());
  for (int g : ca.decision_points) {
    const auto& group = ca.groups[g];
    auto it = policy.keep.find(group.id);
    const double fraction = it == policy.keep.end() ? 1.0 : it->second;
    const int64_t k = channels_to_keep(group.channels, fraction, opts.channel_multiple);
    result.kept_channels[group.id] = k;
    if (k == group.channels) continue;
    std::vector<double> score(static_cast<size_t>(group.channels), 0.0);
    for (int p : group.producers) {
      const auto norms = filter_l1(net.node(p).params.at("weight"));
      for (size_t c = 0; c < norms.size(); ++c) score[c] += norms[c];
    }
    std::vector<int64_t> order(static_cast<size_t>(group.channels));
    std::iota(order.begin(), order.end(), 0);
    // Stable: ties keep the lower index, so the result is deterministic.
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return score[a] > score[b]; });
    order.resize(static_cast<size_t>(k));
    std::sort(order.begin(), order.end());
    kept[g] = std::move(order);
  }

  graph::Network out(net.input_shape());
  out.meta() = net.meta();
  for (int i = 1; i < net.size(); ++i) {
    graph::Node node = net.node(i);
    const auto out_idx = graph::kept_indices(ca.layouts[i], kept);
    const bool weighted = graph::has_weights(node.op);
    if (weighted || node.op == graph::OpKind::kBatchNorm) {
      const auto& in_layout = ca.layouts[node.inputs[0]];
      const auto in_idx = graph::kept_indices(in_layout, kept);
      graph::Attrs& a = node.attrs;
      const bool depthwise = node.op == graph::OpKind::kConv2d && a.groups > 1 &&
                             a.groups == a.in_channels && a.groups == a.out_channels;
      for (auto& [key, t] : node.params) {
        if (!is_all(out_idx, t.shape[0])) t = select(t, 0, out_idx);
        // Input-side slicing: conv weight dim 1 (not for depthwise, whose dim 1 is 1), linear
        // weight dim 1 (features, already expanded by flatten's spatial size).
        if (key == "weight" && weighted && !depthwise && !is_all(in_idx, t.shape[1])) {
          TIGHTFIT_CHECK(a.groups == 1, node.name << ": grouped conv input was pruned");
          t = select(t, 1, in_idx);
        }
      }
      if (weighted) {
        a.out_channels = static_cast<int64_t>(out_idx.size());
        a.in_channels = static_cast<int64_t>(in_idx.size());
        if (depthwise) a.groups = a.out_channels;
      }
    }
    if (weighted) {
      auto it = policy.weight_bits.find(node.name);
      const int bits = it == policy.weight_bits.end() ? 32 : it->second;
      if (bits < 32) fake_quantize_per_channel(node.params.at("weight"), bits);
      result.weight_bits[node.name] = bits;
    }
    out.add(std::move(node));
  }
  out.set_output(net.output());
  graph::infer_shapes(out);  // invariant 2: every produced network has consistent shapes
  result.net = std::move(out);
  return result;
}

int64_t size_bytes(const CompressedNetwork& c) {
  constexpr int64_t kFloatBytes = 4;
  int64_t bits_total = 0;
  for (const auto& node : c.net.nodes()) {
    for (const auto& [key, t] : node.params) {
      if (key == "weight" && graph::has_weights(node.op)) {
        auto it = c.weight_bits.find(node.name);
        const int bits = it == c.weight_bits.end() ? 32 : it->second;
        bits_total += t.numel() * bits;
        if (bits < 32) bits_total += t.shape[0] * kFloatBytes * 8;  // per-channel scales
      } else {
        bits_total += t.numel() * kFloatBytes * 8;
      }
    }
  }
  return (bits_total + 7) / 8;
}

}  // namespace tightfit::policies
