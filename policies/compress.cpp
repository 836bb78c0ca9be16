#include "policies/compress.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/errors.h"
#include "graph/channels.h"
#include "graph/executor.h"
#include "policies/importance.h"
#include "policies/quantize.h"

namespace tightfit::policies {

namespace {

/// Copy of `t` keeping only `idx` (sorted, unique) along dimension `dim`; each kept value is
/// written once (no zero-filled buffer first).
graph::Tensor select(const graph::Tensor& t, size_t dim, const std::vector<int64_t>& idx) {
  graph::Tensor out;
  out.shape = t.shape;
  out.shape[dim] = static_cast<int64_t>(idx.size());
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < dim; ++d) outer *= t.shape[d];
  for (size_t d = dim + 1; d < t.shape.size(); ++d) inner *= t.shape[d];
  const int64_t n = t.shape[dim];
  out.data.reserve(static_cast<size_t>(outer * static_cast<int64_t>(idx.size()) * inner));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i : idx) {
      const float* src = t.data.data() + (o * n + i) * inner;
      out.data.insert(out.data.end(), src, src + inner);
    }
  return out;
}

/// Copy of `t` keeping rows `rows` of dimension 0 and `cols` of dimension 1 (sorted, unique), in
/// one pass: no intermediate tensor.
graph::Tensor select_both(const graph::Tensor& t, const std::vector<int64_t>& rows,
                          const std::vector<int64_t>& cols) {
  graph::Tensor out;
  out.shape = t.shape;
  out.shape[0] = static_cast<int64_t>(rows.size());
  out.shape[1] = static_cast<int64_t>(cols.size());
  int64_t inner = 1;
  for (size_t d = 2; d < t.shape.size(); ++d) inner *= t.shape[d];
  const int64_t n = t.shape[1];
  out.data.reserve(rows.size() * cols.size() * static_cast<size_t>(inner));
  for (int64_t r : rows)
    for (int64_t c : cols) {
      const float* src = t.data.data() + (r * n + c) * inner;
      out.data.insert(out.data.end(), src, src + inner);
    }
  return out;
}

bool is_all(const std::vector<int64_t>& idx, int64_t n) {
  return static_cast<int64_t>(idx.size()) == n;
}

bool is_depthwise(const graph::Node& node) {
  const auto& a = node.attrs;
  return node.op == graph::OpKind::kConv2d && a.groups > 1 && a.groups == a.in_channels &&
         a.groups == a.out_channels;
}

/// Step 1: structured pruning. Returns the pruned network (same node ids as `net`).
graph::Network prune_channels(const graph::Network& net, const graph::ChannelAnalysis& ca,
                              const Policy& policy, const ApplyOptions& opts,
                              CompressedNetwork& result) {
  std::vector<std::vector<int64_t>> kept(ca.groups.size());
  std::vector<int> to_prune;
  for (int g : ca.decision_points) {
    const auto& group = ca.groups[g];
    int64_t k = group.channels;
    if (auto it = policy.keep_count.find(group.id); it != policy.keep_count.end()) {
      k = it->second;
    } else if (auto f = policy.keep.find(group.id); f != policy.keep.end()) {
      k = channels_to_keep(group.channels, f->second, opts.channel_multiple);
    }
    result.kept_channels[group.id] = k;
    if (k < group.channels) to_prune.push_back(g);
  }
  if (to_prune.empty()) return net;

  static const Calibration kNoData;
  const Calibration& calibration = opts.calibration ? *opts.calibration : kNoData;
  // Each criterion the pruned groups use scores the network once.
  std::map<std::string, std::vector<std::vector<double>>> scores;
  for (int g : to_prune) {
    const std::string& criterion = policy.criterion_of(ca.groups[g].id);
    if (!scores.count(criterion))
      scores[criterion] = channel_importance(criterion, net, ca, calibration, opts.seed);
  }
  for (int g : to_prune) {
    const std::string& criterion = policy.criterion_of(ca.groups[g].id);
    const auto& score = scores.at(criterion).at(g);
    TIGHTFIT_CHECK(static_cast<int64_t>(score.size()) == ca.groups[g].channels,
                   "criterion " << criterion << " scored " << score.size() << " channels");
    std::vector<int64_t> order(score.size());
    std::iota(order.begin(), order.end(), 0);
    // Stable: ties keep the lower index, so the result is deterministic.
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return score[a] > score[b]; });
    order.resize(static_cast<size_t>(result.kept_channels.at(ca.groups[g].id)));
    std::sort(order.begin(), order.end());
    kept[g] = std::move(order);
  }

  graph::Network out(net.input_shape());
  out.meta() = net.meta();
  for (int i = 1; i < net.size(); ++i) {
    const graph::Node& src = net.node(i);
    const bool weighted = graph::has_weights(src.op);
    if (!weighted && src.op != graph::OpKind::kBatchNorm) {
      out.add(src);
      continue;
    }
    // A rewritten layer starts without parameters: its pruned tensors are written once, from
    // the original's, rather than copied whole and then cut.
    graph::Node node;
    node.name = src.name;
    node.op = src.op;
    node.inputs = src.inputs;
    node.attrs = src.attrs;
    {
      const auto out_idx = graph::kept_indices(ca.layouts[i], kept);
      const auto in_idx = graph::kept_indices(ca.layouts[node.inputs[0]], kept);
      const bool depthwise = is_depthwise(node);
      for (const auto& [key, t] : src.params) {
        // Input side: conv weight dim 1 (not for depthwise, whose dim 1 is 1) and linear
        // weight dim 1 (features, already expanded by flatten's spatial size).
        const bool cut_in =
            key == "weight" && weighted && !depthwise && !is_all(in_idx, t.shape[1]);
        TIGHTFIT_CHECK(!cut_in || node.attrs.groups == 1,
                       node.name << ": grouped conv input was pruned");
        const bool cut_out = !is_all(out_idx, t.shape[0]);
        if (cut_out && cut_in)
          node.params[key] = select_both(t, out_idx, in_idx);
        else if (cut_out)
          node.params[key] = select(t, 0, out_idx);
        else if (cut_in)
          node.params[key] = select(t, 1, in_idx);
        else
          node.params[key] = t;
      }
      if (weighted) {
        node.attrs.out_channels = static_cast<int64_t>(out_idx.size());
        node.attrs.in_channels = static_cast<int64_t>(in_idx.size());
        if (depthwise) node.attrs.groups = node.attrs.out_channels;
      }
    }
    out.add(std::move(node));
  }
  out.set_output(net.output());
  if (policy.criterion == "thinet") thinet_refit(net, out, ca, kept, calibration);
  return out;
}

/// The original layer each conv/linear of `net` comes from ("x.lr1" -> "x").
std::string origin_of(const std::string& name, const std::map<std::string, double>& ranks) {
  const auto dot = name.rfind(".lr");
  if (dot != std::string::npos && ranks.count(name.substr(0, dot))) return name.substr(0, dot);
  return name;
}

/// Step 3: magnitude masks. Layer scope: each layer its own threshold; global scope: one
/// threshold over all the named layers' weights.
void apply_sparsity(graph::Network& net, const Policy& policy, CompressedNetwork& result) {
  std::vector<int> ids;
  for (const auto& [name, s] : policy.sparsity)
    if (s > 0) ids.push_back(net.find(name));
  if (ids.empty()) return;
  auto threshold_for = [](std::vector<float> mags, double sparsity) {
    const size_t k = static_cast<size_t>(std::floor(sparsity * static_cast<double>(mags.size())));
    if (k == 0) return -1.0f;
    std::nth_element(mags.begin(), mags.begin() + (k - 1), mags.end());
    return mags[k - 1];
  };
  float global_threshold = -1.0f;
  if (policy.sparsity_scope == "global") {
    std::vector<float> all;
    for (int id : ids)
      for (float v : net.node(id).params.at("weight").data) all.push_back(std::fabs(v));
    global_threshold = threshold_for(std::move(all), policy.sparsity.begin()->second);
  }
  for (int id : ids) {
    graph::Node& node = net.node(id);
    graph::Tensor& w = node.params.at("weight");
    float threshold = global_threshold;
    if (policy.sparsity_scope != "global") {
      std::vector<float> mags(w.data.size());
      std::transform(w.data.begin(), w.data.end(), mags.begin(),
                     [](float v) { return std::fabs(v); });
      threshold = threshold_for(std::move(mags), policy.sparsity.at(node.name));
    }
    graph::Tensor mask(w.shape, 1.0f);
    for (size_t k = 0; k < w.data.size(); ++k)
      if (std::fabs(w.data[k]) <= threshold) {
        mask.data[k] = 0.0f;
        w.data[k] = 0.0f;
      }
    result.masks[node.name] = std::move(mask);
  }
}

/// Step 5: inserts a fake_quant node before each layer with activation bits < 32, with ranges
/// calibrated on the calibration images flowing through the network as it is at this point.
/// Replaces `net` only when it inserts something (networks can be hundreds of MB: no copies
/// when there is nothing to do).
void insert_activation_quant(graph::Network& net, const Policy& policy, const ApplyOptions& opts,
                             CompressedNetwork& result) {
  // Which node (by id) reads a quantized input, and at how many bits.
  std::map<int, int> bits_at;
  for (const auto& [name, bits] : policy.act_bits) {
    if (bits >= 32) continue;
    int id = net.find(name);
    if (id < 0) id = net.find(name + ".lr0");  // factorized: quantize the first factor's input
    TIGHTFIT_CHECK(id >= 0, "layer " << name << " vanished");
    bits_at[id] = bits;
  }
  if (bits_at.empty()) return;

  // Activation samples at each quantized layer's input.
  constexpr size_t kMaxSamples = 200000;
  std::map<int, std::vector<float>> samples;
  {
    torch::NoGradGuard no_grad;
    graph::Executor ex(net);
    ex.train(false);
    for (const auto& images : opts.calibration->images) {
      const auto values = ex.forward_all(images);
      for (const auto& [id, bits] : bits_at) {
        auto& s = samples[net.node(id).inputs[0]];
        if (s.size() >= kMaxSamples) continue;
        const auto v = values[net.node(id).inputs[0]].contiguous();
        const float* p = v.data_ptr<float>();
        const size_t take = std::min<size_t>(kMaxSamples - s.size(), v.numel());
        s.insert(s.end(), p, p + take);
      }
    }
  }

  graph::Network out(net.input_shape());
  out.meta() = net.meta();
  std::vector<int> remap(net.size(), 0);
  for (int i = 1; i < net.size(); ++i) {
    graph::Node node = net.node(i);
    for (int& in : node.inputs) in = remap[in];
    if (auto it = bits_at.find(i); it != bits_at.end()) {
      const auto& s = samples.at(net.node(i).inputs[0]);
      const bool non_negative = std::all_of(s.begin(), s.end(), [](float v) { return v >= 0; });
      const auto q = calibrate_activation(s, it->second, policy.quantization, non_negative);
      graph::Node fq;
      fq.name = node.name + ".act_quant";
      fq.op = graph::OpKind::kFakeQuant;
      fq.inputs = {node.inputs[0]};
      fq.attrs.q_scale = q.scale;
      fq.attrs.q_zero_point = q.zero_point;
      fq.attrs.q_min = q.q_min;
      fq.attrs.q_max = q.q_max;
      node.inputs[0] = out.add(std::move(fq));
      result.layers[node.name].act_bits = it->second;
    }
    remap[i] = out.add(std::move(node));
  }
  out.set_output(remap[net.output()]);
  net = std::move(out);
}

/// Step 4 for every conv/linear layer of `work`: its weight quantized by `result.policy` (masks
/// applied after, since quantizers may map 0 to a non-zero level), and what storing it costs.
void quantize_weights(graph::Network& work, CompressedNetwork& result, uint64_t seed) {
  const Policy& policy = result.policy;
  for (int i = 1; i < work.size(); ++i) {
    graph::Node& node = work.node(i);
    if (!graph::has_weights(node.op)) continue;
    graph::Tensor& w = node.params.at("weight");
    LayerInfo info;
    info.origin = origin_of(node.name, policy.rank);
    auto bits_it = policy.weight_bits.find(info.origin);
    info.weight_bits = bits_it == policy.weight_bits.end() ? 32 : bits_it->second;
    info.weights = w.numel();
    int64_t code_bits = info.weights * 32;
    if (info.weight_bits < 32) {
      const QuantConfig quantization = policy.quantization_of(info.origin);
      const auto q = quantize_weight(w, info.weight_bits, quantization, seed);
      info.scheme = info.weight_bits == 16 ? quantization.float16 : quantization.scheme;
      code_bits = q.code_bits;
      info.metadata_bytes = q.metadata_bytes;
    }
    info.nonzeros = info.weights;
    if (auto m = result.masks.find(node.name); m != result.masks.end()) {
      // Quantizers may map 0 to a non-zero level (k-means, binary): pruned weights stay pruned.
      for (size_t k = 0; k < w.data.size(); ++k) w.data[k] *= m->second.data[k];
      info.nonzeros =
          static_cast<int64_t>(std::count(m->second.data.begin(), m->second.data.end(), 1.0f));
      info.sparsity = 1.0 - static_cast<double>(info.nonzeros) / static_cast<double>(info.weights);
      // Only non-zero values are stored, plus where they are.
      code_bits = code_bits * info.nonzeros / std::max<int64_t>(1, info.weights);
      const int64_t rows = w.shape[0];
      info.index_bytes = (sparse_index_bits(rows, info.weights / rows, info.nonzeros) + 7) / 8;
    }
    info.code_bytes = (code_bits + 7) / 8;
    result.weight_bits[node.name] = info.weight_bits;
    result.layers[node.name] = info;
  }
}

}  // namespace

int64_t channels_to_keep(int64_t channels, double fraction, int64_t multiple) {
  // Keeping everything is exact: rounding to the multiple must never prune a "keep all" group.
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

bool needs_calibration(const Policy& policy) {
  for (const auto& [name, bits] : policy.act_bits)
    if (bits < 32) return true;
  bool prunes = !policy.keep_count.empty();
  for (const auto& [id, f] : policy.keep) prunes = prunes || f < 1.0;
  if (!prunes) return false;
  if (criterion_needs_data(policy.criterion)) return true;
  for (const auto& [id, c] : policy.criteria)
    if (criterion_needs_data(c)) return true;
  return false;
}

int64_t sparse_index_bits(int64_t rows, int64_t cols, int64_t nonzeros) {
  const int64_t bitmask = rows * cols;
  int64_t col_bits = 1;
  while ((int64_t{1} << col_bits) < cols) ++col_bits;
  const int64_t csr = nonzeros * col_bits + (rows + 1) * 32;
  return std::min(bitmask, csr);
}

CompressedNetwork apply(const graph::Network& net, const Policy& policy, const ApplyOptions& opts) {
  const graph::ChannelAnalysis ca = graph::analyze_channels(net);
  validate(policy, decision_points(net, ca));
  if (needs_calibration(policy) && (!opts.calibration || opts.calibration->empty()))
    throw ConfigError("this policy needs calibration data (a data-driven criterion or " +
                      std::string("activation bits); give the command a data set (--data-dir)"));
  CompressedNetwork result;
  result.policy = policy;

  graph::Network work = prune_channels(net, ca, policy, opts, result);
  // Layers factorized alike are factorized together, one method at a time.
  std::map<std::string, std::map<std::string, double>> ranks_by_method;
  for (const auto& [layer, r] : policy.rank)
    ranks_by_method[policy.factorization_of(layer).conv][layer] = r;
  for (const auto& [method, ranks] : ranks_by_method) {
    LowRankConfig config = policy.factorization;
    config.conv = method;
    work = factorize(work, ranks, config, result.lowrank);
  }
  apply_sparsity(work, policy, result);

  // Step 4: weight quantization, then size accounting per conv/linear layer.
  quantize_weights(work, result, opts.seed);
  insert_activation_quant(work, policy, opts, result);
  graph::infer_shapes(work);  // invariant 2: every produced network has consistent shapes
  result.net = std::move(work);
  return result;
}

void requantize_weights(CompressedNetwork& c, uint64_t seed) { quantize_weights(c.net, c, seed); }

int64_t size_bytes(const CompressedNetwork& c) {
  constexpr int64_t kFloatBytes = 4;
  int64_t bytes = 0;
  for (const auto& node : c.net.nodes()) {
    for (const auto& [key, t] : node.params) {
      auto info = c.layers.find(node.name);
      if (key == "weight" && graph::has_weights(node.op) && info != c.layers.end()) {
        bytes += info->second.weight_bytes();
      } else {
        bytes += t.numel() * kFloatBytes;
      }
    }
  }
  return bytes;
}

}  // namespace tightfit::policies
