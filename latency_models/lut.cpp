#include "latency_models/lut.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "core/errors.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/json.h"
#include "graph/channels.h"
#include "graph/hash.h"
#include "policies/compress.h"
#include "policies/lowrank.h"
#include "targets/int8.h"

namespace tightfit::latency_models {

namespace {

/// The single consumer of node `id`, or -1 when it has none or several.
std::vector<int> single_consumers(const graph::Network& net) {
  std::vector<int> count(net.size(), 0), consumer(net.size(), -1);
  for (int i = 0; i < net.size(); ++i)
    for (int in : net.node(i).inputs) {
      ++count[in];
      consumer[in] = i;
    }
  for (int i = 0; i < net.size(); ++i)
    if (count[i] != 1 || i == net.output()) consumer[i] = -1;
  return consumer;
}

const char* activation_name(graph::OpKind op) {
  return graph::is_activation(op) ? graph::op_name(op) : nullptr;
}

}  // namespace

std::string LayerKey::str() const {
  std::ostringstream os;
  if (op == "quantize" || op == "fake_quant") {
    os << op << ':' << in_channels << '@' << in_h << 'x' << in_w;
    return os.str();
  }
  os << op << ':' << in_channels << '>' << out_channels << '@' << in_h << 'x' << in_w << ",k"
     << kernel_h << 'x' << kernel_w << ",s" << stride_h << 'x' << stride_w << ",p" << pad_h << 'x'
     << pad_w << ",d" << dilation_h << 'x' << dilation_w << ",g" << groups << (bias ? ",bias" : "")
     << (batch_norm ? ",bn" : "") << (activation.empty() ? "" : "," + activation)
     << (int8 ? ",int8" : "") << (bf16 ? ",bf16" : "");
  return os.str();
}

namespace {

/// Ops an int8 layer's u8 codes pass through unchanged on their way to a fake_quant (the oneDNN
/// engine's preserves_codes).
bool passes_codes(graph::OpKind op) {
  return op == graph::OpKind::kDropout || op == graph::OpKind::kFlatten ||
         op == graph::OpKind::kMaxPool;
}

/// A precision-change step on an activation of `shape` (C x H x W, or features).
LayerKey step_key(const std::string& op, const graph::Shape& shape) {
  LayerKey k;
  k.op = op;
  k.in_channels = shape.at(0);
  k.in_h = shape.size() > 1 ? shape[1] : 1;
  k.in_w = shape.size() > 2 ? shape[2] : 1;
  return k;
}

/// The precision-change steps of `net` (see layer_keys) given which layers run in int8.
std::vector<LayerKey> step_keys(const graph::Network& net, const std::vector<graph::Shape>& shapes,
                                const std::vector<std::optional<targets::Int8Layer>>& plan,
                                const std::vector<int>& consumer) {
  std::vector<std::vector<int>> users(net.size());
  for (int i = 0; i < net.size(); ++i)
    for (int in : net.node(i).inputs) users[in].push_back(i);
  const auto int8_reader = [&](int u, int fq) {
    return u < static_cast<int>(plan.size()) && plan[u] && plan[u]->fq == fq;
  };
  std::vector<LayerKey> keys;
  for (int f = 0; f < net.size(); ++f) {
    if (net.node(f).op != graph::OpKind::kFakeQuant) continue;
    const auto& readers = users[f];
    const size_t int8_readers = static_cast<size_t>(
        std::count_if(readers.begin(), readers.end(), [&](int u) { return int8_reader(u, f); }));
    const bool only_int8 = f != net.output() && !readers.empty() && int8_readers == readers.size();
    if (!only_int8) keys.push_back(step_key("fake_quant", shapes[f]));
    if (int8_readers == 0) continue;
    // Codes are free when an int8 layer writes them: its output (through a fused BN and
    // activation and ops that pass codes, each read only by the next) is this fake_quant.
    int p = net.node(f).inputs.at(0);
    while (passes_codes(net.node(p).op) && consumer[p] >= 0) p = net.node(p).inputs.at(0);
    if (graph::is_activation(net.node(p).op) && consumer[p] >= 0) p = net.node(p).inputs.at(0);
    if (net.node(p).op == graph::OpKind::kBatchNorm && consumer[p] >= 0)
      p = net.node(p).inputs.at(0);
    const bool written_as_codes = only_int8 && graph::has_weights(net.node(p).op) &&
                                  p < static_cast<int>(plan.size()) && plan[p].has_value();
    if (!written_as_codes) keys.push_back(step_key("quantize", shapes[f]));
  }
  return keys;
}

}  // namespace

std::vector<LayerKey> layer_keys(const graph::Network& net, const std::string& precision) {
  const auto shapes = graph::infer_shapes(net);
  const auto consumer = single_consumers(net);
  const auto plan = precision == "int8" ? targets::plan_int8_layers(net, targets::cpu_has_vnni())
                                        : std::vector<std::optional<targets::Int8Layer>>{};
  const auto bf16 = targets::plan_bf16_layers(net, precision == "bf16" && targets::cpu_has_bf16());
  std::vector<LayerKey> keys;
  for (int i = 0; i < net.size(); ++i) {
    const auto& node = net.node(i);
    if (!graph::has_weights(node.op)) continue;
    const auto& a = node.attrs;
    LayerKey k;
    k.op = graph::op_name(node.op);
    k.in_channels = a.in_channels;
    k.out_channels = a.out_channels;
    k.bias = a.bias;
    if (node.op == graph::OpKind::kConv2d) {
      const auto& in = shapes[node.inputs[0]];
      k.in_h = in[1];
      k.in_w = in[2];
      k.kernel_h = a.kernel[0], k.kernel_w = a.kernel[1];
      k.stride_h = a.stride[0], k.stride_w = a.stride[1];
      k.pad_h = a.padding[0], k.pad_w = a.padding[1];
      k.dilation_h = a.dilation[0], k.dilation_w = a.dilation[1];
      k.groups = a.groups;
    }
    int next = consumer[i];
    if (next >= 0 && net.node(next).op == graph::OpKind::kBatchNorm) {
      k.batch_norm = true;
      next = consumer[next];
    }
    if (next >= 0)
      if (const char* act = activation_name(net.node(next).op)) k.activation = act;
    k.int8 = i < static_cast<int>(plan.size()) && plan[i].has_value();
    k.bf16 = bf16[static_cast<size_t>(i)];
    keys.push_back(k);
  }
  for (auto& k : step_keys(net, shapes, plan, consumer)) keys.push_back(std::move(k));
  return keys;
}

namespace {

/// An unsigned 7-bit fake_quant of `input` (exact for int8 kernels with or without VNNI).
graph::Node code_quant(const std::string& name, int input) {
  graph::Node fq;
  fq.name = name;
  fq.op = graph::OpKind::kFakeQuant;
  fq.inputs = {input};
  fq.attrs.q_scale = 0.05;
  fq.attrs.q_zero_point = 0;
  fq.attrs.q_min = 0;
  fq.attrs.q_max = 127;
  return fq;
}

}  // namespace

namespace {

/// Adds a one-channel int8 layer (conv, or linear for a vector) reading `x`, a fake_quant of
/// `channels` channels: a consumer that takes u8 codes. Returns its id.
int add_int8_reader(graph::Network& net, int x, int64_t channels, bool linear) {
  graph::Node next;
  next.name = "next";
  next.op = linear ? graph::OpKind::kLinear : graph::OpKind::kConv2d;
  next.inputs = {x};
  next.attrs.in_channels = channels;
  next.attrs.out_channels = 1;
  next.params["weight"] =
      linear ? graph::Tensor({1, channels}, 0.01f) : graph::Tensor({1, channels, 1, 1}, 0.01f);
  return net.add(std::move(next));
}

/// Makes an identity at inference after `x` the output, so a target that fuses the activation
/// into the layer still has a node of its own to return.
void add_output(graph::Network& net, int x) {
  graph::Node out;
  out.name = "output";
  out.op = graph::OpKind::kDropout;
  out.attrs.p = 0.0;
  out.inputs = {x};
  net.set_output(net.add(std::move(out)));
}

/// The network of a precision-change step (see layer_network).
graph::Network step_network(const LayerKey& k) {
  graph::Network net(graph::Shape{k.in_channels, k.in_h, k.in_w});
  int x = net.add(code_quant(kLayerNode, 0));
  // A quantize step is read by an int8 layer, which takes u8 codes.
  if (k.op == "quantize") x = add_int8_reader(net, x, k.in_channels, false);
  add_output(net, x);
  return net;
}

}  // namespace

graph::Network layer_network(const LayerKey& k, const std::string& precision) {
  if (k.op == "quantize" || k.op == "fake_quant") return step_network(k);
  // Weights are irrelevant to the time of dense kernels: constant values keep it fast to build
  // (and 0.01 everywhere lies on every symmetric per-channel grid).
  const bool conv = k.op == "conv2d";
  const bool int8 = k.int8 || precision == "int8";
  // 2^-7 is a bfloat16 (a bf16 layer), 0.01 is not (every other layer runs in fp32 or int8).
  const float w = k.bf16 ? 0.0078125f : 0.01f;
  graph::Network net(conv ? graph::Shape{k.in_channels, k.in_h, k.in_w}
                          : graph::Shape{k.in_channels, 1, 1});
  int x = 0;
  if (!conv) {
    graph::Node flat;
    flat.name = "flatten";
    flat.op = graph::OpKind::kFlatten;
    flat.inputs = {x};
    x = net.add(std::move(flat));
  }
  if (int8) x = net.add(code_quant("input_quant", x));
  graph::Node layer;
  layer.name = kLayerNode;
  layer.op = conv ? graph::OpKind::kConv2d : graph::OpKind::kLinear;
  layer.inputs = {x};
  auto& a = layer.attrs;
  a.in_channels = k.in_channels;
  a.out_channels = k.out_channels;
  a.bias = k.bias;
  if (conv) {
    a.kernel = {k.kernel_h, k.kernel_w};
    a.stride = {k.stride_h, k.stride_w};
    a.padding = {k.pad_h, k.pad_w};
    a.dilation = {k.dilation_h, k.dilation_w};
    a.groups = k.groups;
    layer.params["weight"] =
        graph::Tensor({k.out_channels, k.in_channels / k.groups, k.kernel_h, k.kernel_w}, w);
  } else {
    layer.params["weight"] = graph::Tensor({k.out_channels, k.in_channels}, w);
  }
  if (k.bias) layer.params["bias"] = graph::Tensor({k.out_channels}, 0.0f);
  x = net.add(std::move(layer));
  if (k.batch_norm) {
    graph::Node bn;
    bn.name = "bn";
    bn.op = graph::OpKind::kBatchNorm;
    bn.inputs = {x};
    bn.params["weight"] = graph::Tensor({k.out_channels}, 1.0f);
    bn.params["bias"] = graph::Tensor({k.out_channels}, 0.0f);
    bn.params["running_mean"] = graph::Tensor({k.out_channels}, 0.0f);
    bn.params["running_var"] = graph::Tensor({k.out_channels}, 1.0f);
    x = net.add(std::move(bn));
  }
  if (!k.activation.empty()) {
    graph::Node act;
    act.name = "act";
    act.op = graph::op_from_name(k.activation);
    act.inputs = {x};
    x = net.add(std::move(act));
  }
  if (int8) x = add_int8_reader(net, net.add(code_quant("output_quant", x)), k.out_channels, !conv);
  add_output(net, x);
  return net;
}

double LookupTable::layer_sum_ms(const graph::Network& net) const {
  double sum = 0;
  for (const auto& k : layer_keys(net, context_.precision)) {
    auto it = entries_.find(k.str());
    if (it == entries_.end())
      throw InputError("the latency table has no entry for layer " + k.str() +
                       "; profile this model and search space again (`tightfit profile`)");
    sum += it->second;
  }
  return sum;
}

std::vector<double> LookupTable::predict(
    const std::vector<const policies::CompressedNetwork*>& candidates) const {
  std::vector<double> out;
  for (const auto* c : candidates) out.push_back(scale_ * layer_sum_ms(c->net) + offset_ms_);
  return out;
}

void LookupTable::fit_line(const std::vector<double>& sums, const std::vector<double>& measured) {
  TIGHTFIT_CHECK(sums.size() == measured.size() && !sums.empty(), "calibration points");
  const double n = static_cast<double>(sums.size());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < sums.size(); ++i) {
    sx += sums[i], sy += measured[i], sxx += sums[i] * sums[i], sxy += sums[i] * measured[i];
  }
  const double denom = n * sxx - sx * sx;
  const double slope = std::fabs(denom) < 1e-12 ? 0.0 : (n * sxy - sx * sy) / denom;
  if (sums.size() < 2 || slope <= 0) {
    // One point, identical sums, or noise that reverses the order of the networks (more layer
    // time measured faster): a line through the origin, so more layer time never predicts less.
    scale_ = sx > 0 ? sy / sx : 1.0;
    offset_ms_ = 0;
    return;
  }
  scale_ = slope;
  offset_ms_ = (sy - scale_ * sx) / n;
}

void LookupTable::calibrate(const std::vector<double>& sums, const std::vector<double>& measured) {
  fit_line(sums, measured);
  double sq = 0;
  size_t n = 0;
  for (size_t i = 0; i < sums.size(); ++i) {
    if (!(measured[i] > 0)) continue;  // a relative error needs a time to be relative to
    const double err = (scale_ * sums[i] + offset_ms_ - measured[i]) / measured[i];
    sq += err * err;
    ++n;
  }
  calibration_rmspe_ = n > 0 ? std::sqrt(sq / static_cast<double>(n)) : -1;
}

nlohmann::json LookupTable::accuracy() const {
  nlohmann::json j = nlohmann::json::object();
  if (calibration_rmspe_ >= 0) j["calibration_rmspe"] = calibration_rmspe_;
  if (!check_.is_null()) j["check"] = check_;
  return j.empty() ? nlohmann::json() : j;
}

nlohmann::json LookupTable::to_json() const {
  nlohmann::json j = {{"format", "tightfit-latency-table"},
                      {"version", kLutFormatVersion},
                      {"target", context_.target},
                      {"precision", context_.precision},
                      {"threads", context_.threads},
                      {"batch", context_.batch},
                      {"model", context_.model},
                      {"model_hash", context_.model_hash},
                      {"scale", scale_},
                      {"offset_ms", offset_ms_},
                      {"entries", entries_},
                      {"context", targets::machine_context()}};
  // Optional fields (tables written before them stay loadable): absent when not measured.
  if (calibration_rmspe_ >= 0) j["calibration_rmspe"] = calibration_rmspe_;
  if (!check_.is_null()) j["check"] = check_;
  if (!channel_curves_.empty()) {
    j["channel_curves"] = curves_to_json(channel_curves_);
    j["preferred_channel_multiple"] = preferred_channel_multiple_;
  }
  return j;
}

LookupTable LookupTable::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object() || j.value("format", "") != "tightfit-latency-table")
    throw InputError(where + " is not a tightfit latency table; make one with `tightfit profile`");
  if (j.value("version", 0) > kLutFormatVersion)
    throw InputError(where + " was written by a newer tightfit; upgrade or profile again");
  try {
    LutContext c;
    c.target = j.at("target").get<std::string>();
    c.precision = j.at("precision").get<std::string>();
    c.threads = j.at("threads").get<int>();
    c.batch = j.at("batch").get<int64_t>();
    c.model = j.at("model").get<std::string>();
    c.model_hash = j.at("model_hash").get<std::string>();
    LookupTable t(c);
    t.version_ = j.at("version").get<int>();
    t.scale_ = j.at("scale").get<double>();
    t.offset_ms_ = j.at("offset_ms").get<double>();
    t.entries_ = j.at("entries").get<std::map<std::string, double>>();
    for (const auto& [key, ms] : t.entries_)
      if (!(ms >= 0) || !std::isfinite(ms))
        throw InputError(where + " is corrupt: entry " + key + " is " + std::to_string(ms) +
                         " ms; profile again");
    if (j.contains("channel_curves"))
      t.channel_curves_ = curves_from_json(j["channel_curves"], where);
    t.preferred_channel_multiple_ = j.value("preferred_channel_multiple", int64_t{0});
    t.calibration_rmspe_ = j.value("calibration_rmspe", -1.0);
    if (j.contains("check")) t.check_ = j["check"];
    if (t.preferred_channel_multiple_ < 0)
      throw InputError(where +
                       " is corrupt: preferred_channel_multiple is negative; profile again");
    return t;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(where + " is corrupt (" + std::string(e.what()) + "); profile again");
  }
}

void LookupTable::save(const std::string& path) const {
  write_file_atomic(path, to_json().dump(1) + "\n");
}

LookupTable LookupTable::load(const std::string& path, const LutContext& expected) {
  const std::string text = read_whole_file(path, "latency table", "check the path");
  nlohmann::json j;
  try {
    j = parse_json_text(text, "latency table '" + path + "'");
  } catch (const ConfigError& e) {
    throw InputError(std::string(e.what()) + " (the table is corrupt: profile again)");
  }
  LookupTable t = from_json(j, "latency table '" + path + "'");
  auto mismatch = [&](const char* what, const std::string& got, const std::string& want) {
    if (!want.empty() && got != want)
      throw InputError("latency table '" + path + "' was profiled for " + what + " '" + got +
                       "', not '" + want + "'; profile it for this one with `tightfit profile`");
  };
  mismatch("target", t.context_.target, expected.target);
  mismatch("precision", t.context_.precision, expected.precision);
  mismatch("model structure", t.context_.model_hash, expected.model_hash);
  return t;
}

namespace {

/// Channel counts each group can take under `space` (all groups; fixed ones keep theirs).
std::vector<std::set<int64_t>> reachable_counts(const graph::ChannelAnalysis& ca,
                                                const std::vector<double>& keep, int64_t multiple) {
  std::vector<std::set<int64_t>> counts(ca.groups.size());
  for (size_t g = 0; g < ca.groups.size(); ++g) {
    const auto& group = ca.groups[g];
    if (!group.prunable) {
      counts[g] = {group.channels};
      continue;
    }
    for (double f : keep) counts[g].insert(policies::channels_to_keep(group.channels, f, multiple));
  }
  return counts;
}

/// Every channel total a layout can take (sums over its segments' choices, times spatial).
std::set<int64_t> layout_counts(const graph::ChannelLayout& layout,
                                const std::vector<std::set<int64_t>>& counts) {
  std::set<int64_t> totals = {0};
  for (const auto& seg : layout.segments) {
    std::set<int64_t> next;
    for (int64_t t : totals)
      for (int64_t c : counts[seg.group]) next.insert(t + c);
    totals = std::move(next);
  }
  std::set<int64_t> out;
  for (int64_t t : totals) out.insert(t * layout.spatial);
  return out;
}

}  // namespace

namespace {

/// The keys of the factors policies::factorize makes of layer `k` at rank fraction `rank` with
/// conv factorization `method` (the key itself when the factorization is not applied).
std::vector<LayerKey> factor_keys(const LayerKey& k, double rank, const std::string& method) {
  std::vector<policies::LowRankReport> reports;
  policies::LowRankConfig config;
  config.conv = method;
  const auto factored =
      policies::factorize(layer_network(k), {{kLayerNode, rank}}, config, reports);
  return layer_keys(factored);
}

}  // namespace

std::vector<LayerKey> reachable_layer_keys(const graph::Network& net, const SpaceReach& reach) {
  const auto ca = graph::analyze_channels(net);
  const auto counts = reachable_counts(ca, reach.keep, reach.channel_multiple);
  const auto base_keys = layer_keys(net);
  std::vector<LayerKey> keys;
  size_t layer = 0;
  for (int i = 0; i < net.size(); ++i) {
    const auto& node = net.node(i);
    if (!graph::has_weights(node.op)) continue;
    const auto& base = base_keys[layer++];
    const auto ins = layout_counts(ca.layouts[node.inputs[0]], counts);
    const auto outs = layout_counts(ca.layouts[i], counts);
    const bool depthwise =
        base.groups > 1 && base.groups == base.in_channels && base.groups == base.out_channels;
    // The precision-change steps on this layer's input, at every channel count it reaches.
    for (int64_t in : ins) {
      const graph::Shape shape = node.op == graph::OpKind::kConv2d
                                     ? graph::Shape{in, base.in_h, base.in_w}
                                     : graph::Shape{in};
      if (reach.act_quant) keys.push_back(step_key("fake_quant", shape));
      if (reach.int8) keys.push_back(step_key("quantize", shape));
    }
    const auto ranks = reach.rank.find(node.name);
    const auto methods = reach.factorization.find(node.name);
    const std::vector<std::string> factorizations = methods == reach.factorization.end()
                                                        ? std::vector<std::string>{"tucker2"}
                                                        : methods->second;
    for (int64_t in : ins)
      for (int64_t out : outs) {
        if (depthwise && in != out) continue;
        auto k = base;
        k.in_channels = in;
        k.out_channels = out;
        if (depthwise) k.groups = in;
        keys.push_back(k);
        if (ranks == reach.rank.end()) continue;
        for (double r : ranks->second)
          for (const auto& method : factorizations)
            if (r < 1.0)
              for (auto& f : factor_keys(k, r, method)) keys.push_back(std::move(f));
      }
  }
  // Every layer configuration in the lower precisions the table's target may run too.
  const size_t n = keys.size();
  for (size_t i = 0; i < n; ++i)
    if (keys[i].op == "conv2d" || keys[i].op == "linear") {
      if (reach.int8) {
        keys.push_back(keys[i]);
        keys.back().int8 = true;
      }
      if (reach.bf16) {
        keys.push_back(keys[i]);
        keys.back().bf16 = true;
      }
    }
  return keys;
}

void calibrate_on(LookupTable& table, const std::vector<policies::CompressedNetwork>& networks,
                  targets::Target& target, const targets::MeasureOptions& opts) {
  std::vector<double> sums, measured;
  for (const auto& c : networks) {
    const auto m = target.measure(c, opts);
    if (!m.ok()) throw InputError("calibration measurement failed: " + m.error);
    sums.push_back(table.layer_sum_ms(c.net));
    measured.push_back(m.median_ms);
  }
  table.calibrate(sums, measured);
}

void profile(LookupTable& table, const std::vector<LayerKey>& keys, targets::Target& target,
             const targets::MeasureOptions& opts,
             const std::function<void(size_t, size_t)>& on_entry) {
  std::vector<const LayerKey*> todo;
  std::map<std::string, bool> queued;
  for (const auto& k : keys) {
    const std::string s = k.str();
    if (table.entries().count(s) || queued[s]) continue;
    queued[s] = true;
    todo.push_back(&k);
  }
  // The layer's own kernel, as it runs inside a network: the conversions at the one-layer
  // network's edges are not part of it.
  targets::MeasureOptions kernel_opts = opts;
  kernel_opts.kernel = kLayerNode;
  size_t done = 0;
  for (const LayerKey* k : todo) {
    policies::CompressedNetwork c;
    c.net = layer_network(*k);  // in the key's own precision
    const auto m = target.measure(c, kernel_opts);
    if (!m.ok()) throw InputError("profiling layer " + k->str() + " failed: " + m.error);
    table.entries()[k->str()] = m.median_ms;
    if (on_entry) on_entry(++done, todo.size());
  }
}

LutContext LutContext::of(const std::string& target, const targets::MeasureOptions& opts,
                          const std::string& model, const graph::Network& net) {
  return {target, opts.precision, opts.threads, opts.batch, model, graph::structure_hash(net)};
}

namespace {

/// Calibration batches for policies applied only to be timed: activation ranges and data-driven
/// criteria then come from random images of the network's input shape (times do not depend on
/// the ranges, only on where quantization sits and whether its codes are unsigned, which random
/// signed pixels decide as normalized images do).
policies::Calibration timing_calibration(const graph::Network& net) {
  constexpr int64_t kImages = 8;
  constexpr int64_t kClasses = 10;
  const auto& s = net.input_shape();
  at::Generator gen = at::detail::createCPUGenerator(/*seed_in=*/7);
  policies::Calibration c;
  c.images.push_back(at::randn({kImages, s[0], s[1], s[2]}, gen));
  c.labels.push_back(at::randint(kClasses, {kImages}, gen, at::kLong));
  return c;
}

}  // namespace

void build_table(LookupTable& table, const graph::Network& net, const SpaceReach& reach,
                 const std::vector<policies::Policy>& calibration, targets::Target& target,
                 const targets::MeasureOptions& layer_opts,
                 const targets::MeasureOptions& network_opts, const ProfileProgress& on_entry) {
  SpaceReach r = reach;
  r.int8 = reach.int8 && table.context().precision == "int8";
  r.bf16 = reach.bf16 && table.context().precision == "bf16" && targets::cpu_has_bf16();
  profile(table, reachable_layer_keys(net, r), target, layer_opts, on_entry);
  const auto data = timing_calibration(net);
  policies::ApplyOptions apply_opts;
  apply_opts.channel_multiple = reach.channel_multiple;
  apply_opts.calibration = &data;
  std::vector<policies::CompressedNetwork> networks;
  for (const auto& p : calibration) networks.push_back(policies::apply(net, p, apply_opts));
  calibrate_on(table, networks, target, network_opts);
}

nlohmann::json TableCheck::to_json() const {
  return {{"policies", policies},
          {"rmspe", rmspe},
          {"within_5pct", within_5pct},
          {"within_10pct", within_10pct}};
}

TableCheck check_table(const LookupTable& table, const graph::Network& net,
                       const std::vector<policies::Policy>& policies, int64_t multiple,
                       targets::Target& target, const targets::MeasureOptions& opts,
                       const std::function<void(size_t done)>& on_policy) {
  const auto data = timing_calibration(net);
  policies::ApplyOptions apply_opts;
  apply_opts.channel_multiple = multiple;
  apply_opts.calibration = &data;
  std::vector<double> errors;
  for (size_t k = 0; k < policies.size(); ++k) {
    const auto c = policies::apply(net, policies[k], apply_opts);
    const auto m = target.measure(c, opts);
    if (on_policy) on_policy(k + 1);
    errors.push_back(m.ok() ? (table.predict({&c}).front() - m.median_ms) / m.median_ms
                            : std::nan(""));
  }
  return summarize_errors(errors);
}

TableCheck summarize_errors(const std::vector<double>& errors) {
  TableCheck check;
  check.errors = errors;
  double sq = 0;
  int64_t within5 = 0, within10 = 0;
  for (double err : errors) {
    if (std::isnan(err)) continue;
    sq += err * err;
    within5 += std::fabs(err) <= 0.05;
    within10 += std::fabs(err) <= 0.10;
    ++check.policies;
  }
  const double n = static_cast<double>(std::max<int64_t>(1, check.policies));
  check.rmspe = std::sqrt(sq / n);
  check.within_5pct = static_cast<double>(within5) / n;
  check.within_10pct = static_cast<double>(within10) / n;
  return check;
}

}  // namespace tightfit::latency_models
