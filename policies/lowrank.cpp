// Low-rank factorization of conv2d and linear layers (contract and formulas: lowrank.h).
//
// Map of this file:
//   1. Config parsing: strict keys and values, messages list what is valid.
//   2. Requests: every layer name and rank value is checked before anything is built, so a
//      mistake throws ConfigError and leaves `reports` untouched. Reports come in network order.
//   3. One planner per method builds the factor nodes from float64 decompositions of the weight:
//        svd      W = U S V^T,  lr0 = sqrt(S_r) V_r^T,  lr1 = U_r sqrt(S_r) (+ bias)
//        tucker2  HOSVD: leading left singular vectors of the input- and output-mode unfoldings,
//                 core = K x_0 U_out^T x_1 U_in^T; 1x1 -> kxk core -> 1x1 (+ bias)
//        spatial  Jaderberg et al. 2014 scheme 2: SVD of K reshaped to (in*kh) x (out*kw);
//                 kh x 1 vertical conv then 1 x kw horizontal conv (+ bias)
//      Splitting sqrt(S) between the two factors keeps their scales alike, which matters once
//      the factors are quantized or fine-tuned.
//   4. Cost: params and per-image MACs of the factors come from the factor nodes themselves
//      (shapes by graph::infer_node_shape), so they cannot drift from what the executor runs.
//      A factorization that is not smaller in both is dropped (unless allow_larger) and the
//      layer is kept; a report's "after" numbers always describe the returned network.
//   5. Rebuild: nodes are copied in order into a new Network, input ids remapped because one
//      layer may become two or three nodes; consumers of a factorized layer read its last factor.

#include "policies/lowrank.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <sstream>
#include <utility>

#include "core/errors.h"
#include "core/json.h"
#include "graph/executor.h"

namespace tightfit::policies {

namespace {

const std::vector<std::string> kRankBy = {"fraction", "count", "energy"};
/// Layers named in an "unknown layer" message; big networks have hundreds.
constexpr size_t kListedLayers = 12;

bool one_of(const std::string& v, const std::vector<std::string>& valid) {
  return std::find(valid.begin(), valid.end(), v) != valid.end();
}

void check_values(const LowRankConfig& c, const std::string& where) {
  if (!one_of(c.conv, kConvFactorizations))
    throw ConfigError(where + ".conv is '" + c.conv +
                      "'; valid values: " + join(kConvFactorizations));
  if (!one_of(c.rank_by, kRankBy))
    throw ConfigError(where + ".rank_by is '" + c.rank_by + "'; valid values: " + join(kRankBy));
}

std::string num_str(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

bool is_depthwise(const graph::Attrs& a) {
  return a.groups > 1 && a.groups == a.in_channels && a.groups == a.out_channels;
}

bool is_spatial_1x1(const graph::Node& node, const LowRankConfig& config) {
  return node.op == graph::OpKind::kConv2d && config.conv == "spatial" &&
         node.attrs.kernel[0] == 1 && node.attrs.kernel[1] == 1;
}

/// Why `node` (a conv2d or linear) is not factorized, or "" when it is.
std::string not_applicable(const graph::Node& node, const LowRankConfig& config) {
  const graph::Attrs& a = node.attrs;
  if (node.op == graph::OpKind::kConv2d && is_depthwise(a))
    return "depthwise conv is not factorized (one input channel per filter leaves nothing to "
           "factor); left as is";
  if (node.op == graph::OpKind::kConv2d && a.groups > 1)
    return "grouped conv (groups = " + std::to_string(a.groups) + ") is not factorized; left as is";
  if (is_spatial_1x1(node, config))
    return "spatial factorization does not apply to a 1x1 conv (there is no kernel to split; "
           "conv = tucker2 factors 1x1 convs); left as is";
  return "";
}

/// Largest rank a count may ask for, or 0 when larger counts are clamped (tucker2 clamps each
/// mode to its channels, so a single count can serve layers of different widths).
int64_t count_limit(const graph::Node& node, const LowRankConfig& config) {
  const graph::Attrs& a = node.attrs;
  if (node.op == graph::OpKind::kLinear) return std::min(a.in_channels, a.out_channels);
  if (config.conv == "spatial")
    return std::min(a.in_channels * a.kernel[0], a.out_channels * a.kernel[1]);
  return 0;
}

std::string valid_layers(const graph::Network& net) {
  std::vector<std::string> names;
  size_t total = 0;
  for (const auto& node : net.nodes()) {
    if (!graph::has_weights(node.op)) continue;
    if (names.size() < kListedLayers) names.push_back(node.name);
    ++total;
  }
  std::string s = join(names);
  if (total > names.size()) s += ", ... (" + std::to_string(total) + " in all)";
  return s.empty() ? "none (the network has no conv2d or linear layer)" : s;
}

void check_rank_value(const graph::Node& node, double v, const LowRankConfig& config) {
  const std::string what = "low-rank rank for layer '" + node.name + "' must be ";
  const std::string got = " (rank_by = " + config.rank_by + "), got " + num_str(v);
  if (config.rank_by == "fraction" && !(v > 0.0 && v <= 1.0))
    throw ConfigError(what + "a fraction of the full rank in (0, 1]" + got);
  if (config.rank_by == "energy" && !(v > 0.0 && v <= 1.0))
    throw ConfigError(what + "a share of retained energy in (0, 1]" + got);
  if (config.rank_by == "count") {
    const int64_t limit = not_applicable(node, config).empty() ? count_limit(node, config) : 0;
    const bool integer = std::isfinite(v) && v == std::floor(v);
    if (!integer || v < 1.0 || (limit > 0 && v > static_cast<double>(limit)))
      throw ConfigError(what + "an integer count " +
                        (limit > 0 ? "in 1.." + std::to_string(limit) : std::string(">= 1")) + got);
  }
}

/// Smallest r whose leading squared singular values hold at least `share` of their sum.
int64_t energy_rank(const at::Tensor& s, double share) {
  const at::Tensor cum = s.to(torch::kFloat64).square().cumsum(0);
  const int64_t n = cum.size(0);
  // The total is the last cumulative sum itself, so share = 1 reaches exactly the full rank
  // (or the numerical rank, when trailing singular values are zero).
  const double target = share * cum[n - 1].item<double>();
  const double* c = cum.data_ptr<double>();
  for (int64_t r = 1; r <= n; ++r)
    if (c[r - 1] >= target) return r;
  return n;
}

/// Rank out of `full` for one matrix with singular values `s`, read per config.rank_by.
int64_t pick_rank(const std::string& rank_by, double v, int64_t full, const at::Tensor& s) {
  if (rank_by == "energy") return std::min(full, energy_rank(s, v));
  if (rank_by == "count") return std::min(full, static_cast<int64_t>(v));
  const int64_t r = static_cast<int64_t>(std::llround(v * static_cast<double>(full)));
  return std::clamp<int64_t>(r, 1, full);
}

/// Left singular vectors of `m` as a full rows x rows basis (an orthonormal completion where
/// rows > cols, so any rank up to rows can be taken), and the singular values.
std::pair<at::Tensor, at::Tensor> left_singular(const at::Tensor& m) {
  auto [u, s, vh] = torch::linalg_svd(m, /*full_matrices=*/m.size(0) > m.size(1));
  return {u, s};
}

graph::Node conv_node(const std::string& name, const at::Tensor& weight,
                      std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                      std::array<int64_t, 2> dilation, const graph::Tensor* bias) {
  graph::Node n;
  n.name = name;
  n.op = graph::OpKind::kConv2d;
  n.attrs.out_channels = weight.size(0);
  n.attrs.in_channels = weight.size(1);
  n.attrs.kernel = {weight.size(2), weight.size(3)};
  n.attrs.stride = stride;
  n.attrs.padding = padding;
  n.attrs.dilation = dilation;
  n.attrs.bias = bias != nullptr;
  n.params["weight"] = graph::from_torch(weight);
  if (bias) n.params["bias"] = *bias;
  return n;
}

graph::Node linear_node(const std::string& name, const at::Tensor& weight,
                        const graph::Tensor* bias) {
  graph::Node n;
  n.name = name;
  n.op = graph::OpKind::kLinear;
  n.attrs.out_channels = weight.size(0);
  n.attrs.in_channels = weight.size(1);
  n.attrs.bias = bias != nullptr;
  n.params["weight"] = graph::from_torch(weight);
  if (bias) n.params["bias"] = *bias;
  return n;
}

const graph::Tensor* bias_of(const graph::Node& node) {
  auto it = node.params.find("bias");
  return node.attrs.bias && it != node.params.end() ? &it->second : nullptr;
}

at::Tensor weight64(const graph::Node& node) {
  return graph::to_torch(node.params.at("weight")).to(torch::kFloat64);
}

/// The factors of one layer and the ranks they were cut at.
struct Factors {
  std::vector<graph::Node> nodes;
  int64_t full_rank = 0;
  std::vector<int64_t> ranks;
};

Factors svd_linear(const graph::Node& node, double v, const std::string& rank_by) {
  const at::Tensor w = weight64(node);  // {out, in}
  auto [u, s, vh] = torch::linalg_svd(w, /*full_matrices=*/false);
  Factors f;
  f.full_rank = s.size(0);
  const int64_t r = pick_rank(rank_by, v, f.full_rank, s);
  f.ranks = {r};
  const at::Tensor root = s.slice(0, 0, r).sqrt();
  const at::Tensor w0 = root.unsqueeze(1) * vh.slice(0, 0, r);  // {r, in}
  const at::Tensor w1 = u.slice(1, 0, r) * root.unsqueeze(0);   // {out, r}
  f.nodes.push_back(linear_node(node.name + ".lr0", w0, nullptr));
  f.nodes.push_back(linear_node(node.name + ".lr1", w1, bias_of(node)));
  return f;
}

Factors tucker2_conv(const graph::Node& node, double v, const std::string& rank_by) {
  const graph::Attrs& a = node.attrs;
  const at::Tensor k = weight64(node);  // {out, in, kh, kw}
  const int64_t out = a.out_channels, in = a.in_channels;
  auto [u_in, s_in] = left_singular(k.transpose(0, 1).reshape({in, -1}));
  auto [u_out, s_out] = left_singular(k.reshape({out, -1}));
  Factors f;
  f.full_rank = in;
  int64_t r_in = 0, r_out = 0;
  if (rank_by == "count") {
    r_in = std::min<int64_t>(static_cast<int64_t>(v), in);
    r_out = std::min<int64_t>(static_cast<int64_t>(v), out);
  } else {
    r_in = pick_rank(rank_by, v, in, s_in);
    r_out = pick_rank(rank_by, v, out, s_out);
  }
  f.ranks = {r_in, r_out};
  const at::Tensor p_in = u_in.slice(1, 0, r_in);     // {in, r_in}
  const at::Tensor p_out = u_out.slice(1, 0, r_out);  // {out, r_out}
  // Contracted one mode at a time: a single three-operand einsum forms the outer product of
  // the two projections first, out x r_out x in x r_in values (549 GB for 512 x 512 channels).
  const at::Tensor projected_out = torch::einsum("oa,ocyx->acyx", {p_out, k});
  const at::Tensor core = torch::einsum("cb,acyx->abyx", {p_in, projected_out});
  const std::array<int64_t, 2> unit{1, 1}, zero{0, 0};
  f.nodes.push_back(
      conv_node(node.name + ".lr0", p_in.t().reshape({r_in, in, 1, 1}), unit, zero, unit, nullptr));
  f.nodes.push_back(conv_node(node.name + ".lr1", core, a.stride, a.padding, a.dilation, nullptr));
  f.nodes.push_back(conv_node(node.name + ".lr2", p_out.reshape({out, r_out, 1, 1}), unit, zero,
                              unit, bias_of(node)));
  return f;
}

Factors spatial_conv(const graph::Node& node, double v, const std::string& rank_by) {
  const graph::Attrs& a = node.attrs;
  const at::Tensor k = weight64(node);  // {out, in, kh, kw}
  const int64_t out = a.out_channels, in = a.in_channels;
  const int64_t kh = a.kernel[0], kw = a.kernel[1];
  // M[(c, y), (o, x)] = K[o, c, y, x]
  const at::Tensor m = k.permute({1, 2, 0, 3}).reshape({in * kh, out * kw});
  auto [u, s, vh] = torch::linalg_svd(m, /*full_matrices=*/false);
  Factors f;
  f.full_rank = s.size(0);
  const int64_t r = pick_rank(rank_by, v, f.full_rank, s);
  f.ranks = {r};
  const at::Tensor root = s.slice(0, 0, r).sqrt();
  // V1[r, c, y, 0] = U[(c, y), r] sqrt(S_r);  H[o, r, 0, x] = sqrt(S_r) V[(o, x), r]
  const at::Tensor vertical = (u.slice(1, 0, r) * root.unsqueeze(0)).t().reshape({r, in, kh, 1});
  const at::Tensor horizontal = (vh.slice(0, 0, r) * root.unsqueeze(1))
                                    .reshape({r, out, kw})
                                    .permute({1, 0, 2})
                                    .reshape({out, r, 1, kw});
  f.nodes.push_back(conv_node(node.name + ".lr0", vertical, {a.stride[0], 1}, {a.padding[0], 0},
                              {a.dilation[0], 1}, nullptr));
  f.nodes.push_back(conv_node(node.name + ".lr1", horizontal, {1, a.stride[1]}, {0, a.padding[1]},
                              {1, a.dilation[1]}, bias_of(node)));
  return f;
}

int64_t node_params(const graph::Node& node) {
  int64_t n = 0;
  for (const auto& [key, t] : node.params)
    if (key == "weight" || key == "bias") n += t.numel();
  return n;
}

/// Multiply-accumulates per image: the weight applied once per output position.
int64_t node_macs(const graph::Node& node, const graph::Shape& out_shape) {
  int64_t positions = 1;
  if (node.op == graph::OpKind::kConv2d) positions = out_shape.at(1) * out_shape.at(2);
  return node.params.at("weight").numel() * positions;
}

/// The report and the nodes that replace `node` (empty when it stays as is).
struct Plan {
  LowRankReport report;
  std::vector<graph::Node> factors;
};

Plan plan_layer(const graph::Node& node, const graph::Shape& in_shape,
                const graph::Shape& out_shape, double v, const LowRankConfig& config) {
  Plan plan;
  LowRankReport& rep = plan.report;
  rep.layer = node.name;
  rep.kind = node.op == graph::OpKind::kLinear ? "svd" : config.conv;
  rep.params_before = rep.params_after = node_params(node);
  rep.macs_before = rep.macs_after = node_macs(node, out_shape);
  rep.note = not_applicable(node, config);
  if (!rep.note.empty()) return plan;

  torch::NoGradGuard no_grad;
  Factors f = rep.kind == "svd"       ? svd_linear(node, v, config.rank_by)
              : rep.kind == "tucker2" ? tucker2_conv(node, v, config.rank_by)
                                      : spatial_conv(node, v, config.rank_by);
  rep.full_rank = f.full_rank;
  rep.ranks = f.ranks;

  int64_t params = 0, macs = 0;
  graph::Shape shape = in_shape;
  for (const auto& factor : f.nodes) {
    shape = graph::infer_node_shape(factor, {shape});
    params += node_params(factor);
    macs += node_macs(factor, shape);
  }
  TIGHTFIT_CHECK(shape == out_shape, node.name << ": factors produce " << graph::shape_str(shape)
                                               << ", the layer " << graph::shape_str(out_shape));
  if (!config.allow_larger && (params >= rep.params_before || macs >= rep.macs_before)) {
    rep.note = "factorized layer would be larger (" + std::to_string(params) +
               " params) or slower (" + std::to_string(macs) +
               " MACs) than the original; left as is";
    return plan;
  }
  rep.applied = true;
  rep.params_after = params;
  rep.macs_after = macs;
  for (const auto& factor : f.nodes) rep.new_layers.push_back(factor.name);
  plan.factors = std::move(f.nodes);
  return plan;
}

}  // namespace

LowRankConfig LowRankConfig::from_json(const nlohmann::json& j, const std::string& where) {
  check_keys(j, section_keys<LowRankConfig>(), where);  // null is not a config here
  const auto c = read_section<LowRankConfig>(j, where);
  check_values(c, where);
  return c;
}

nlohmann::json LowRankConfig::to_json() const { return write_section(*this); }

nlohmann::json LowRankReport::to_json() const {
  return {{"layer", layer},
          {"kind", kind},
          {"full_rank", full_rank},
          {"ranks", ranks},
          {"params_before", params_before},
          {"params_after", params_after},
          {"macs_before", macs_before},
          {"macs_after", macs_after},
          {"applied", applied},
          {"note", note},
          {"new_layers", new_layers}};
}

graph::Network factorize(const graph::Network& net, const std::map<std::string, double>& ranks,
                         const LowRankConfig& config, std::vector<LowRankReport>& reports) {
  check_values(config, "low-rank config");
  std::map<int, double> value_of;  // node id -> rank value
  for (const auto& [name, value] : ranks) {
    const int id = net.find(name);
    if (id < 0)
      throw ConfigError("unknown layer '" + name +
                        "' for low-rank factorization; valid layers: " + valid_layers(net));
    const graph::Node& node = net.node(id);
    if (!graph::has_weights(node.op))
      throw ConfigError(
          "layer '" + name + "' is a " + graph::op_name(node.op) +
          "; low-rank factorization applies to conv2d and linear layers: " + valid_layers(net));
    check_rank_value(node, value, config);
    value_of[id] = value;
  }

  const std::vector<graph::Shape> shapes = graph::infer_shapes(net);
  graph::Network out(net.input_shape());
  out.meta() = net.meta();
  std::vector<int> remap(static_cast<size_t>(net.size()), 0);
  std::vector<LowRankReport> new_reports;
  for (int i = 1; i < net.size(); ++i) {
    graph::Node node = net.node(i);
    for (int& in : node.inputs) in = remap[in];
    auto it = value_of.find(i);
    if (it == value_of.end()) {
      remap[i] = out.add(std::move(node));
      continue;
    }
    const graph::Node& src = net.node(i);
    Plan plan = plan_layer(src, shapes[src.inputs.at(0)], shapes[i], it->second, config);
    new_reports.push_back(std::move(plan.report));
    if (plan.factors.empty()) {
      remap[i] = out.add(std::move(node));
      continue;
    }
    int x = node.inputs.at(0);
    for (auto& factor : plan.factors) {
      factor.inputs = {x};
      x = out.add(std::move(factor));
    }
    remap[i] = x;
  }
  out.set_output(remap[net.output()]);
  graph::infer_shapes(out);  // invariant 2: every produced network has consistent shapes
  reports.insert(reports.end(), new_reports.begin(), new_reports.end());
  return out;
}

}  // namespace tightfit::policies
