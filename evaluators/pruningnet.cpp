// PruningNet (MetaPruning) and the `pruningnet` evaluator. The layout:
//
//   encoding    e = kept / channels of every channel decision point, in decision_points() order
//               (the paper's network encoding vector), one row {1, D}.
//   generators  one per conv/linear layer whose output or input channels belong to a decision
//               point, the paper's two fully connected layers:
//                 W_full = reshape(fc2(relu(fc1(e))))   fc1: D -> hidden,
//                                                       fc2: hidden -> out x in/groups x kh x kw
//               at the original layer's size. fc2's bias starts as the original weight and fc2's
//               weight at zero, so a fresh PruningNet generates the original weights for every
//               encoding (the unpruned configuration reproduces the original network exactly)
//               and training learns configuration-dependent corrections on top; starting from
//               the trained weights instead of from scratch (the paper) makes a few thousand
//               steps enough on a CPU.
//   shared      every other trainable parameter (conv/linear biases, BatchNorm scale and shift,
//               weights of layers no decision point touches) is one tensor at the original size,
//               cropped per configuration. BatchNorm running statistics are the original's,
//               cropped; they are never trained: training uses batch statistics and scoring
//               recalibrates them per candidate (the paper does the same at search time).
//   cropping    a configuration keeps the first k channels of each group: graph::kept_indices
//               with the prefix 0..k-1 per group gives the surviving positions of every tensor,
//               through residual adds, concats and flatten. Weights are thus per position, as in
//               the paper's crop of the first c channels. A candidate pruned by an importance
//               criterion kept other channels; its generated network keeps the same counts by
//               position, which is what a PruningNet can tell about it.
//   training    per step: draw k per decision point (the config's keep fractions, drawn as its
//               `sampling` says, rounded by policies::channels_to_keep), build the pruned
//               network, hand it the generated and cropped tensors with
//               Executor::set_parameter (they carry autograd history),
//               cross-entropy on one batch (with `sandwich`, plus the full-width network's on
//               the same batch), backward into generators and shared tensors, Adam with
//               warm-up and cosine decay. All randomness comes from the seed.
//   file        graph/container.h's layout under the magic "TFITPNT1": a JSON header (network
//               hash, config, decision points, tensor names and shapes, meta), the float32 data
//               and a CRC-32 of all of it. The network hash covers structure and weights: a
//               PruningNet only fits the network (and the weights its generators started from)
//               it was trained for.

#include "evaluators/pruningnet.h"

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "core/errors.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/machine.h"
#include "core/timing.h"
#include "datasets/batches.h"
#include "evaluators/bn_recal.h"
#include "graph/channels.h"
#include "graph/container.h"
#include "graph/executor.h"
#include "graph/hash.h"
#include "models/train.h"

namespace tightfit::evaluators {

namespace {

constexpr uint64_t kDropoutSeedStride = 1000003;  // per-step dropout seeds: seed * stride + step
constexpr const char* kTrainHint = "tightfit metaprune train --model <model> --out <file>";
const graph::FileKind kPruningNetFile = {{'T', 'F', 'I', 'T', 'P', 'N', 'T', '1'},
                                         1,
                                         "tightfit-pruningnet",
                                         "PruningNet file",
                                         "PruningNet file",
                                         "`tightfit metaprune train`",
                                         std::string("train it again with `") + kTrainHint + "`"};

bool is_depthwise(const graph::Node& node) {
  const auto& a = node.attrs;
  return node.op == graph::OpKind::kConv2d && a.groups > 1 && a.groups == a.in_channels &&
         a.groups == a.out_channels;
}

/// `t` keeping positions `idx` (sorted, unique) of dimension `dim`; a view when they are a prefix.
at::Tensor crop(const at::Tensor& t, int64_t dim, const std::vector<int64_t>& idx) {
  const auto n = static_cast<int64_t>(idx.size());
  if (n == t.size(dim)) return t;
  if (idx.back() == n - 1) return t.narrow(dim, 0, n);
  return t.index_select(dim, torch::tensor(idx, torch::kLong));
}

/// Seeded uniform(-bound, bound) tensor (the std RNG, so the values do not depend on LibTorch's).
at::Tensor uniform(std::vector<int64_t> shape, double bound, std::mt19937_64& rng) {
  auto t = torch::empty(shape, torch::kFloat32);
  std::uniform_real_distribution<float> dist(static_cast<float>(-bound), static_cast<float>(bound));
  float* p = t.data_ptr<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

std::string describe(const std::string& path) {
  return graph::describe_file(kPruningNetFile, path);
}

PruningNetInfo info_from_header(const nlohmann::json& j, const std::string& path) {
  try {
    PruningNetInfo info;
    info.network_hash = j.at("network_hash").get<std::string>();
    info.params_hash = j.at("params_hash").get<std::string>();
    info.config = PruningNetConfig::from_json(j.at("config"), describe(path) + " config");
    info.meta = j.at("meta").get<std::map<std::string, std::string>>();
    return info;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(describe(path) + " has a malformed header (" + e.what() + "); train it again");
  }
}

/// The one line for a PruningNet trained for another network than the one at hand.
[[noreturn]] void throw_other_network(const std::string& path, const PruningNetInfo& info,
                                      const std::string& hash) {
  auto model = info.meta.find("model");
  throw InputError("PruningNet '" + path + "' was trained for network with hash " +
                   info.network_hash +
                   (model != info.meta.end() ? " (model " + model->second + ")" : "") + ", not " +
                   hash + "; train one for this network with `tightfit metaprune train --model " +
                   "<this model> --out <file>`");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Configs and results

PruningNetConfig PruningNetConfig::from_json(const nlohmann::json& j, const std::string& where) {
  // A missing key (or a null config) reads as what files written before the key existed were
  // trained with.
  PruningNetConfig before_keys;
  before_keys.sampling = "layerwise";
  before_keys.sandwich = false;
  const auto c = read_section(j.is_null() ? nlohmann::json::object() : j, where, before_keys);
  if (c.sampling != "layerwise" && c.sampling != "banded")
    throw ConfigError(where + ".sampling is '" + c.sampling +
                      "'; use \"banded\" (widths spread evenly) or \"layerwise\" (the paper)");
  if (c.band < 0) throw ConfigError(where + ".band must be >= 0 (e.g. 2)");
  if (c.hidden < 1) throw ConfigError(where + ".hidden must be >= 1 (e.g. 32)");
  if (c.channel_multiple < 1) throw ConfigError(where + ".channel_multiple must be >= 1");
  if (c.keep.empty()) throw ConfigError(where + ".keep is empty; list fractions in (0, 1]");
  for (double f : c.keep)
    if (!(f > 0 && f <= 1))
      throw ConfigError(where + ".keep has " + std::to_string(f) + "; fractions lie in (0, 1]");
  return c;
}

nlohmann::json PruningNetConfig::to_json() const { return write_section(*this); }

std::vector<size_t> sample_keep_positions(const PruningNetConfig& config, size_t points,
                                          std::mt19937_64& rng) {
  const auto n = static_cast<int64_t>(config.keep.size());
  int64_t lo = 0, hi = n - 1;
  if (config.sampling == "banded") {
    const int64_t centre = std::uniform_int_distribution<int64_t>(0, n - 1)(rng);
    lo = std::max<int64_t>(0, centre - config.band);
    hi = std::min<int64_t>(n - 1, centre + config.band);
  }
  std::uniform_int_distribution<int64_t> pick(lo, hi);
  std::vector<size_t> positions(points);
  for (auto& p : positions) p = static_cast<size_t>(pick(rng));
  return positions;
}

double PruningNetTrainResult::first_window(int64_t window) const {
  const auto n =
      std::min<size_t>(step_loss.size(), static_cast<size_t>(std::max<int64_t>(1, window)));
  if (n == 0) return 0;
  return std::accumulate(step_loss.begin(), step_loss.begin() + n, 0.0) / static_cast<double>(n);
}

double PruningNetTrainResult::last_window(int64_t window) const {
  const auto n =
      std::min<size_t>(step_loss.size(), static_cast<size_t>(std::max<int64_t>(1, window)));
  if (n == 0) return 0;
  return std::accumulate(step_loss.end() - n, step_loss.end(), 0.0) / static_cast<double>(n);
}

std::string network_hash(const graph::Network& net) { return graph::content_hash(net); }

// ---------------------------------------------------------------------------------------------
// PruningNet

struct PruningNet::Impl {
  /// One layer's weight generator: W_full = reshape(fc2(relu(fc1(e)))).
  struct Generator {
    int node = 0;
    std::vector<int64_t> shape;  ///< the original weight's shape
    at::Tensor fc1_w, fc1_b, fc2_w, fc2_b;
  };

  graph::Network original;
  graph::ChannelAnalysis ca;
  std::vector<policies::ChannelDecision> points;
  std::vector<int> point_group;  ///< ca.groups index of each decision point
  PruningNetConfig config;
  std::string hash;
  std::map<std::string, std::string> meta;
  std::vector<Generator> generators;
  std::map<int, size_t> generator_of;  ///< node id -> index into generators
  /// Every parameter no generator produces, at the original size: (node id, key) -> tensor.
  /// "weight" and "bias" are trained (requires_grad); running statistics are not.
  std::map<std::pair<int, std::string>, at::Tensor> shared;

  Impl(const graph::Network& net, PruningNetConfig c, uint64_t seed)
      : original(net), config(std::move(c)) {
    config = PruningNetConfig::from_json(config.to_json(), "PruningNet config");  // validates
    ca = graph::analyze_channels(original);
    points = policies::decision_points(original, ca).channels;
    if (points.empty())
      throw InputError(
          "this network has no prunable channel group: a PruningNet has nothing to "
          "generate; pick a model with conv/linear layers whose channels can be "
          "pruned (see `tightfit info --model ...`)");
    for (const auto& p : points) point_group.push_back(ca.find_group(p.id));
    hash = evaluators::network_hash(original);

    std::vector<bool> is_point(ca.groups.size(), false);
    for (int g : point_group) is_point[g] = true;
    auto touches_point = [&](int node) {
      for (const auto& seg : ca.layouts[node].segments)
        if (is_point[seg.group]) return true;
      return false;
    };
    std::mt19937_64 rng(seed);
    const auto d = static_cast<int64_t>(points.size());
    const double fc1_bound = 1.0 / std::sqrt(static_cast<double>(d));  // nn.Linear's default
    for (int i = 1; i < original.size(); ++i) {
      const graph::Node& node = original.node(i);
      const bool generated =
          graph::has_weights(node.op) && (touches_point(i) || touches_point(node.inputs.at(0)));
      for (const auto& [key, t] : node.params) {
        if (generated && key == "weight") {
          Generator g;
          g.node = i;
          g.shape = t.shape;
          g.fc1_w = uniform({config.hidden, d}, fc1_bound, rng).set_requires_grad(true);
          g.fc1_b = uniform({config.hidden}, fc1_bound, rng).set_requires_grad(true);
          g.fc2_w = torch::zeros({t.numel(), config.hidden}).set_requires_grad(true);
          g.fc2_b = graph::to_torch(t).reshape({-1}).clone().set_requires_grad(true);
          generator_of[i] = generators.size();
          generators.push_back(std::move(g));
        } else {
          at::Tensor s = graph::to_torch(t);
          if (key == "weight" || key == "bias") s.set_requires_grad(true);
          shared[{i, key}] = s;
        }
      }
    }
  }

  /// Every trained tensor with its name in the file, in a fixed order.
  std::vector<std::pair<std::string, at::Tensor>> named_tensors() const {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& g : generators) {
      const std::string prefix = "generator." + original.node(g.node).name;
      out.emplace_back(prefix + ".fc1.weight", g.fc1_w);
      out.emplace_back(prefix + ".fc1.bias", g.fc1_b);
      out.emplace_back(prefix + ".fc2.weight", g.fc2_w);
      out.emplace_back(prefix + ".fc2.bias", g.fc2_b);
    }
    for (const auto& [id, t] : shared)
      if (t.requires_grad())
        out.emplace_back("shared." + original.node(id.first).name + "." + id.second, t);
    return out;
  }

  /// Kept channels per decision point (index order) from a map by id; absent ids keep all.
  std::vector<int64_t> kept_vector(const std::map<std::string, int64_t>& kept) const {
    std::vector<int64_t> out;
    for (const auto& p : points) out.push_back(p.channels);
    for (const auto& [id, k] : kept) {
      size_t p = 0;
      while (p < points.size() && points[p].id != id) ++p;
      if (p == points.size()) {
        std::vector<std::string> ids;
        for (const auto& q : points) ids.push_back(q.id);
        throw InputError("'" + id +
                         "' is not a channel decision point of the network this PruningNet was "
                         "trained for; valid ones: " +
                         join(ids));
      }
      if (k < 1 || k > points[p].channels)
        throw InputError("decision point '" + id + "' keeps " + std::to_string(k) +
                         " channels; it has " + std::to_string(points[p].channels) +
                         ", so keep 1 to " + std::to_string(points[p].channels));
      out[p] = k;
    }
    return out;
  }

  /// A random configuration for one training step.
  std::vector<int64_t> sample(std::mt19937_64& rng) const {
    const auto positions = sample_keep_positions(config, points.size(), rng);
    std::vector<int64_t> kept;
    for (size_t i = 0; i < points.size(); ++i)
      kept.push_back(policies::channels_to_keep(points[i].channels, config.keep[positions[i]],
                                                config.channel_multiple));
    return kept;
  }

  /// Every decision point at its full width.
  std::vector<int64_t> widest() const {
    std::vector<int64_t> kept;
    for (const auto& p : points) kept.push_back(p.channels);
    return kept;
  }

  /// A pruned network and the tensors the meta network gives its trainable parameters.
  struct Instance {
    graph::Network net;  ///< pruned structure; its parameters are detached copies
    struct Param {
      std::string layer, key;
      at::Tensor value;  ///< with autograd history when grad mode is on
    };
    std::vector<Param> params;
  };

  /// One forward pass of the meta network for configuration `kept` (per decision point).
  Instance instantiate(const std::vector<int64_t>& kept) const {
    std::vector<std::vector<int64_t>> group_kept(ca.groups.size());
    std::vector<float> fractions;
    for (size_t p = 0; p < points.size(); ++p) {
      fractions.push_back(static_cast<float>(kept[p]) / static_cast<float>(points[p].channels));
      if (kept[p] < points[p].channels) {
        auto& idx = group_kept[point_group[p]];
        idx.resize(static_cast<size_t>(kept[p]));
        std::iota(idx.begin(), idx.end(), 0);
      }
    }
    const at::Tensor encoding = torch::tensor(fractions).reshape({1, -1});
    Instance inst;
    inst.net = graph::Network(original.input_shape());
    inst.net.meta() = original.meta();
    for (int i = 1; i < original.size(); ++i) {
      const graph::Node& src = original.node(i);
      graph::Node node;
      node.name = src.name;
      node.op = src.op;
      node.inputs = src.inputs;
      node.attrs = src.attrs;
      const bool weighted = graph::has_weights(src.op);
      if (weighted || src.op == graph::OpKind::kBatchNorm) {
        const auto out_idx = graph::kept_indices(ca.layouts[i], group_kept);
        const auto in_idx = graph::kept_indices(ca.layouts[src.inputs.at(0)], group_kept);
        const bool depthwise = is_depthwise(src);
        for (const auto& [key, t] : src.params) {
          at::Tensor full;
          if (auto g = generator_of.find(i); g != generator_of.end() && key == "weight") {
            const Generator& gen = generators[g->second];
            const auto hidden = torch::relu(torch::linear(encoding, gen.fc1_w, gen.fc1_b));
            full = torch::linear(hidden, gen.fc2_w, gen.fc2_b).reshape(gen.shape);
          } else {
            full = shared.at({i, key});
          }
          at::Tensor value = crop(full, 0, out_idx);
          if (key == "weight" && weighted && !depthwise) value = crop(value, 1, in_idx);
          node.params[key] = graph::from_torch(value);
          if (key == "weight" || key == "bias") inst.params.push_back({src.name, key, value});
        }
        if (weighted) {
          node.attrs.out_channels = static_cast<int64_t>(out_idx.size());
          node.attrs.in_channels = static_cast<int64_t>(in_idx.size());
          if (depthwise) node.attrs.groups = node.attrs.out_channels;
        }
      } else {
        node.params = src.params;
      }
      inst.net.add(std::move(node));
    }
    inst.net.set_output(original.output());
    return inst;
  }
};

PruningNet::PruningNet(const graph::Network& original, PruningNetConfig config, uint64_t seed)
    : impl_(std::make_unique<Impl>(original, std::move(config), seed)) {}
PruningNet::PruningNet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PruningNet::~PruningNet() = default;
PruningNet::PruningNet(PruningNet&&) noexcept = default;
PruningNet& PruningNet::operator=(PruningNet&&) noexcept = default;

const std::vector<policies::ChannelDecision>& PruningNet::decision_points() const {
  return impl_->points;
}
const PruningNetConfig& PruningNet::config() const { return impl_->config; }
const std::string& PruningNet::network_hash() const { return impl_->hash; }
std::map<std::string, std::string>& PruningNet::meta() { return impl_->meta; }
const std::map<std::string, std::string>& PruningNet::meta() const { return impl_->meta; }

int64_t PruningNet::num_params() const {
  int64_t n = 0;
  for (const auto& [name, t] : impl_->named_tensors()) n += t.numel();
  return n;
}

std::map<std::string, int64_t> PruningNet::kept_channels(const policies::Policy& policy) const {
  std::map<std::string, int64_t> kept;
  for (const auto& p : impl_->points) {
    if (auto c = policy.keep_count.find(p.id); c != policy.keep_count.end()) {
      kept[p.id] = c->second;
    } else if (auto f = policy.keep.find(p.id); f != policy.keep.end()) {
      kept[p.id] =
          policies::channels_to_keep(p.channels, f->second, impl_->config.channel_multiple);
    }
  }
  for (const auto& [id, f] : policy.keep)
    if (!kept.count(id)) impl_->kept_vector({{id, 1}});  // throws, naming the unknown point
  for (const auto& [id, c] : policy.keep_count)
    if (!kept.count(id)) impl_->kept_vector({{id, 1}});
  return kept;
}

graph::Network PruningNet::generate(const std::map<std::string, int64_t>& kept_channels) const {
  torch::NoGradGuard no_grad;
  return impl_->instantiate(impl_->kept_vector(kept_channels)).net;
}

graph::Network PruningNet::generate(const policies::Policy& policy) const {
  if (!policy.weight_bits.empty() || !policy.act_bits.empty() || !policy.rank.empty() ||
      !policy.sparsity.empty())
    throw InputError(
        "PruningNet::generate takes a keep-only policy; apply its bits, ranks and "
        "sparsity to the generated network with policies::apply");
  return generate(kept_channels(policy));
}

PruningNetTrainResult PruningNet::train(const datasets::Split& data,
                                        const PruningNetTrainOptions& opts) {
  if (opts.steps < 1)
    throw ConfigError("PruningNet training needs steps >= 1 (got " + std::to_string(opts.steps) +
                      "); e.g. 1000");
  if (opts.batch_size < 1 || !(opts.lr > 0))
    throw ConfigError("PruningNet training needs batch_size >= 1 and lr > 0");
  check_threads(opts.threads, "PruningNet training's threads");
  if (data.train.size() == 0) throw InputError("PruningNet training: the training split is empty");
  at::set_num_threads(opts.threads);
  std::mt19937_64 rng(opts.seed);
  const auto t0 = Clock::now();

  std::vector<at::Tensor> params;
  for (const auto& [name, t] : impl_->named_tensors()) params.push_back(t);
  torch::optim::Adam optimizer(params, torch::optim::AdamOptions(opts.lr));

  const int64_t steps_per_epoch = (data.train.size() + opts.batch_size - 1) / opts.batch_size;
  const auto warmup = static_cast<int64_t>(opts.warmup_fraction * static_cast<double>(opts.steps));
  // Progress: a live counter on a terminal, ten lines in a log file.
  const bool live = opts.progress && ::isatty(STDERR_FILENO);
  const int64_t report_every = std::max<int64_t>(1, opts.steps / 10);

  PruningNetTrainResult result;
  std::unique_ptr<datasets::Batches> batches;
  double window_sum = 0;
  int64_t window_count = 0;
  const std::vector<int64_t> widest = impl_->widest();  // the sandwich's largest network
  for (int64_t step = 0; step < opts.steps; ++step) {
    const int64_t epoch = step / steps_per_epoch;
    if (step % steps_per_epoch == 0)
      batches = std::make_unique<datasets::Batches>(
          data.train, opts.batch_size, data.mean, data.std,
          opts.seed * 1000003ULL + static_cast<uint64_t>(epoch) + 1);
    double lr = opts.lr;
    if (step < warmup) {
      lr *= static_cast<double>(step + 1) / static_cast<double>(warmup);
    } else {
      const double t = static_cast<double>(step - warmup) /
                       static_cast<double>(std::max<int64_t>(1, opts.steps - warmup));
      lr *= 0.5 * (1.0 + std::cos(M_PI * t));
    }
    for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);

    const auto batch = batches->get(step % steps_per_epoch);
    // The loss of one configuration on this step's batch, with autograd history.
    auto loss_of = [&](const std::vector<int64_t>& kept) {
      auto inst = impl_->instantiate(kept);
      graph::Executor ex(inst.net);
      for (const auto& p : inst.params) ex.set_parameter(p.layer, p.key, p.value);
      ex.train(true);
      ex.seed_dropout(opts.seed * kDropoutSeedStride + static_cast<uint64_t>(step));
      return torch::nn::functional::cross_entropy(ex.forward(batch.images), batch.labels);
    };
    optimizer.zero_grad();
    const auto loss = loss_of(impl_->sample(rng));
    // The sandwich rule's largest network: its gradient adds to the sampled one's.
    if (impl_->config.sandwich)
      (loss + loss_of(widest)).backward();
    else
      loss.backward();
    optimizer.step();
    const double value = loss.item<double>();  // the sampled configuration's
    result.step_loss.push_back(value);
    window_sum += value;
    ++window_count;

    const bool report = (step + 1) % report_every == 0 || step + 1 == opts.steps;
    if (live && (step % 10 == 0 || report))
      std::fprintf(stderr, "\r[metaprune] step %lld/%lld  loss %.4f  %.1f steps/s   ",
                   static_cast<long long>(step + 1), static_cast<long long>(opts.steps),
                   window_sum / static_cast<double>(window_count),
                   static_cast<double>(step + 1) / seconds_since(t0));
    if (opts.progress && report) {
      std::fprintf(
          stderr,
          "%s[metaprune] step %lld/%lld  loss %.4f (mean of the last %lld)  %.1f "
          "steps/s  %.0fs\n",
          live ? "\r" : "", static_cast<long long>(step + 1), static_cast<long long>(opts.steps),
          window_sum / static_cast<double>(window_count), static_cast<long long>(window_count),
          static_cast<double>(step + 1) / seconds_since(t0), seconds_since(t0));
      window_sum = 0;
      window_count = 0;
    }
  }
  result.seconds = seconds_since(t0);
  return result;
}

// ---------------------------------------------------------------------------------------------
// The file

void PruningNet::save(const std::string& path) const {
  nlohmann::json header;
  header["network_hash"] = impl_->hash;
  header["config"] = impl_->config.to_json();
  header["meta"] = impl_->meta;
  auto& points = header["decision_points"] = nlohmann::json::array();
  for (const auto& p : impl_->points) points.push_back({{"id", p.id}, {"channels", p.channels}});
  auto& tensors = header["tensors"] = nlohmann::json::array();
  std::string data;
  for (const auto& [name, t] : impl_->named_tensors()) {
    const auto c = t.detach().contiguous();
    tensors.push_back({{"name", name}, {"shape", c.sizes().vec()}});
    data.append(reinterpret_cast<const char*>(c.data_ptr<float>()),
                static_cast<size_t>(c.numel()) * sizeof(float));
  }
  header["params_hash"] = fnv1a_hex(data);
  graph::write_container(path, kPruningNetFile, std::move(header), data);
}

PruningNetInfo PruningNet::read_info(const std::string& path) {
  return info_from_header(graph::read_container_header(path, kPruningNetFile), path);
}

PruningNet PruningNet::load(const std::string& path, const graph::Network& original) {
  const auto file = graph::read_container(path, kPruningNetFile);
  const std::string where = describe(path);
  const PruningNetInfo info = info_from_header(file.header, path);
  const auto data_len = static_cast<uint64_t>(file.data_size);
  const std::string hash = tightfit::evaluators::network_hash(original);
  if (hash != info.network_hash) throw_other_network(path, info, hash);

  auto impl = std::make_unique<Impl>(original, info.config, /*seed=*/0);
  impl->meta = info.meta;
  const auto named = impl->named_tensors();
  const auto& tensors = file.header.at("tensors");
  if (tensors.size() != named.size())
    throw InputError(where + " holds " + std::to_string(tensors.size()) + " tensors, expected " +
                     std::to_string(named.size()) + "; train it again");
  const char* data = file.data().data();
  uint64_t offset = 0;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < named.size(); ++i) {
    const auto& [name, t] = named[i];
    if (tensors[i].value("name", "") != name ||
        tensors[i].value("shape", std::vector<int64_t>{}) != t.sizes().vec())
      throw InputError(where + ": tensor " + std::to_string(i) + " is '" +
                       tensors[i].value("name", "") + "', expected '" + name +
                       "' of this network's shape; train it again");
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * sizeof(float);
    if (offset + bytes > data_len)
      throw InputError(where + ": data shorter than its header says; train it again");
    std::memcpy(t.data_ptr<float>(), data + offset, bytes);
    offset += bytes;
  }
  if (offset != data_len)
    throw InputError(where + ": data longer than its header says; train it again");
  return PruningNet(std::move(impl));
}

// ---------------------------------------------------------------------------------------------
// The evaluator

PruningNetEvaluatorConfig PruningNetEvaluatorConfig::from_json(const nlohmann::json& j,
                                                               const std::string& where) {
  PruningNetEvaluatorConfig c;
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  check_keys(obj, {"path", "bn_batches", "batch_size", "validation_images", "seed", "threads"},
             where);
  if (!obj.contains("path"))
    throw ConfigError(where + ".path is missing: name the PruningNet file (train one with `" +
                      kTrainHint + "`)");
  c.path = get_or(obj, "path", c.path, where);
  // The scoring keys are bn-recal's, parsed and checked by its config.
  nlohmann::json scoring = obj;
  scoring.erase("path");
  const auto score = BnRecalConfig::from_json(scoring, where);
  c.bn_batches = score.bn_batches;
  c.batch_size = score.batch_size;
  c.validation_images = score.validation_images;
  c.seed = score.seed;
  c.threads = score.threads;
  if (!std::filesystem::exists(c.path))
    throw ConfigError(where + ".path: PruningNet file '" + c.path +
                      "' does not exist; train one with `tightfit metaprune train --model "
                      "<model> --out " +
                      c.path + "`");
  return c;
}

nlohmann::json PruningNetEvaluatorConfig::to_json() const {
  return {{"path", path},
          {"bn_batches", bn_batches},
          {"batch_size", batch_size},
          {"validation_images", validation_images},
          {"seed", seed},
          {"threads", threads}};
}

PruningNetEvaluator::PruningNetEvaluator(PruningNetEvaluatorConfig config,
                                         const datasets::Split& data)
    : config_(std::move(config)), data_(data), info_(PruningNet::read_info(config_.path)) {}

nlohmann::json PruningNetEvaluator::settings() const {
  // The file's content, not only its path, decides the scores: retraining changes params_hash.
  auto j = config_.to_json();
  j["network_hash"] = info_.network_hash;
  j["params_hash"] = info_.params_hash;
  return j;
}

const PruningNet& PruningNetEvaluator::pruningnet_for(const graph::Network& original) {
  const std::string hash = network_hash(original);
  if (hash != info_.network_hash) throw_other_network(config_.path, info_, hash);
  std::lock_guard<std::mutex> lock(mutex_);
  if (!pruningnet_)
    pruningnet_ = std::make_unique<PruningNet>(PruningNet::load(config_.path, original));
  return *pruningnet_;
}

AccuracyResult PruningNetEvaluator::evaluate(const policies::CompressedNetwork& candidate,
                                             const graph::Network& original) {
  // A file for another network is the user's mistake, not the candidate's: it throws.
  const PruningNet& pruningnet = pruningnet_for(original);
  return timed_evaluation([&] {
    at::set_num_threads(config_.threads);
    torch::NoGradGuard no_grad;
    auto recalibrated = [&](graph::Network& net) {
      if (config_.bn_batches == 0) return;
      graph::Executor ex(net);
      recalibrate_bn(ex, data_, config_.bn_batches, config_.batch_size, config_.seed);
      ex.write_back(net);
    };
    const auto kept = candidate.kept_channels.empty() ? pruningnet.kept_channels(candidate.policy)
                                                      : candidate.kept_channels;
    graph::Network net = pruningnet.generate(kept);
    recalibrated(net);

    // The policy's other decisions, on the generated network (whose layers keep their names).
    policies::Policy rest = candidate.policy;
    rest.keep.clear();
    rest.keep_count.clear();
    bool compresses = !rest.rank.empty();
    for (const auto& [layer, bits] : rest.weight_bits) compresses = compresses || bits < 32;
    for (const auto& [layer, bits] : rest.act_bits) compresses = compresses || bits < 32;
    for (const auto& [layer, s] : rest.sparsity) compresses = compresses || s > 0;
    if (compresses) {
      policies::Calibration calibration;
      if (policies::needs_calibration(rest)) calibration = sample_calibration(data_, config_.seed);
      policies::ApplyOptions opts;
      opts.calibration = &calibration;
      opts.seed = config_.seed;
      net = policies::apply(net, rest, opts).net;
      recalibrated(net);
    }

    // Already recalibrated: scored as `subset` scores.
    BnRecalConfig score;
    score.bn_batches = 0;
    score.validation_images = config_.validation_images;
    score.threads = config_.threads;
    return score_subset(net, score, data_);
  });
}

}  // namespace tightfit::evaluators
