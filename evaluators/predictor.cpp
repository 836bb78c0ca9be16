// The learned accuracy predictor.
//
// Encoding: one value per decision point and dimension, in the order of the network's
// DecisionPoints, so every policy of one network gives a vector of the same length and meaning.
//
// Model: an MLP (config.layers hidden ReLU layers of config.hidden units, one linear output) on
// standardized inputs and targets. The scored sets are small (tens to a few thousand policies),
// so every step is full-batch Adam with a cosine-decayed learning rate and decoupled weight decay
// on the weights (AdamW). Without minibatch sampling the only randomness is the initialization,
// drawn from a generator of our own (LibTorch's global generator is left alone, invariant 5).
// At this size the cost of a step is the number of LibTorch operations, not arithmetic, so the
// backward pass is written out by hand (a dozen matrix products and masks, no autograd graph) and
// all parameters live in one flat tensor, with the layers' weights and biases as views of it:
// the optimizer step is a handful of operations on that one tensor.
//
// Reported error: k-fold cross-validation. Samples are shuffled by the seed into config.folds
// folds; each fold is predicted by a model fitted (with its own standardization) on the others,
// and the out-of-fold predictions give the holdout RMSE and Kendall's tau. The model kept is then
// fitted on every sample. So a fit trains folds + 1 models, each a few hundred small steps.

#include "evaluators/predictor.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "core/errors.h"
#include "core/json.h"
#include "core/machine.h"
#include "core/stats.h"
#include "evaluators/fidelity.h"

namespace tightfit::evaluators {
namespace {

constexpr double kFloatBits = 32.0;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kPi = 3.14159265358979323846;
// Adam's usual moment decays and denominator guard.
constexpr double kAdamBeta1 = 0.9;
constexpr double kAdamBeta2 = 0.999;
constexpr double kAdamEps = 1e-8;
// Standard deviations below this are treated as a constant feature or target (divide by 1).
constexpr double kMinStd = 1e-8;

/// Restores LibTorch's intra-op thread count on scope exit when `threads` > 0 changed it.
class ThreadsGuard {
 public:
  explicit ThreadsGuard(int threads) : saved_(at::get_num_threads()), changed_(threads > 0) {
    if (changed_) at::set_num_threads(threads);
  }
  ~ThreadsGuard() {
    if (changed_) at::set_num_threads(saved_);
  }
  ThreadsGuard(const ThreadsGuard&) = delete;
  ThreadsGuard& operator=(const ThreadsGuard&) = delete;

 private:
  int saved_;
  bool changed_;
};

// Throws ConfigError for a value out of range (from_json, and configs built in code).
void check_config(const PredictorConfig& c, const std::string& where) {
  if (c.hidden < 1 || c.layers < 0 || c.steps < 1)
    throw ConfigError(where + ": hidden and steps must be >= 1 and layers >= 0 (e.g. hidden 64, " +
                      "layers 2, steps 200)");
  if (!(c.lr > 0) || !(c.weight_decay >= 0))
    throw ConfigError(where +
                      ": lr must be > 0 and weight_decay >= 0 (e.g. lr 0.03, weight_decay 0.1)");
  if (c.folds == 1 || c.folds < 0)
    throw ConfigError(where + ".folds is " + std::to_string(c.folds) +
                      "; use 0 (no cross-validation) or 2 or more (e.g. 5)");
  if (c.min_samples < std::max<int64_t>(2, c.folds))
    throw ConfigError(where + ".min_samples is " + std::to_string(c.min_samples) +
                      "; it must be at least 2 and at least folds (" + std::to_string(c.folds) +
                      ")");
  if (c.threads < 0)
    throw ConfigError(where + ".threads must be >= 0 (0 leaves LibTorch's setting as is)");
  if (c.threads > 0) check_threads(c.threads, where + ".threads");
}

torch::Tensor to_tensor(const std::vector<std::vector<float>>& x, int64_t features) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(x.size()), features}, torch::kFloat32);
  float* dst = t.data_ptr<float>();
  for (const auto& row : x) dst = std::copy(row.begin(), row.end(), dst);
  return t;
}

double rmse(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(sum / static_cast<double>(a.size()));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// PolicyEncoder

PolicyEncoder::PolicyEncoder(const policies::DecisionPoints& points, MethodChoices methods)
    : points_(points), methods_(std::move(methods)) {}

size_t PolicyEncoder::size() const {
  return points_.channels.size() * (1 + methods_.criteria.size()) +
         points_.layers.size() * (4 + methods_.schemes.size() + methods_.factorizations.size());
}

std::vector<std::string> PolicyEncoder::feature_names() const {
  std::vector<std::string> names;
  names.reserve(size());
  for (const auto& c : points_.channels) names.push_back(c.id + "/keep");
  for (const auto& l : points_.layers)
    for (const char* dim : {"/weight_bits", "/act_bits", "/rank", "/sparsity"})
      names.push_back(l.name + dim);
  for (const auto& c : points_.channels)
    for (const auto& m : methods_.criteria) names.push_back(c.id + "/criterion=" + m);
  for (const auto& l : points_.layers) {
    for (const auto& m : methods_.schemes) names.push_back(l.name + "/scheme=" + m);
    for (const auto& m : methods_.factorizations) names.push_back(l.name + "/factorization=" + m);
  }
  return names;
}

std::vector<float> PolicyEncoder::encode(const policies::Policy& policy) const {
  policies::validate(policy, points_);
  std::vector<float> f;
  f.reserve(size());
  for (const auto& c : points_.channels) {
    double keep = 1.0;
    if (auto it = policy.keep_count.find(c.id); it != policy.keep_count.end())
      keep =
          static_cast<double>(it->second) / static_cast<double>(std::max<int64_t>(c.channels, 1));
    else if (auto k = policy.keep.find(c.id); k != policy.keep.end())
      keep = k->second;
    f.push_back(static_cast<float>(keep));
  }
  auto bits = [](const std::map<std::string, int>& m, const std::string& layer) {
    auto it = m.find(layer);
    return it == m.end() ? 1.0 : static_cast<double>(it->second) / kFloatBits;
  };
  for (const auto& l : points_.layers) {
    f.push_back(static_cast<float>(bits(policy.weight_bits, l.name)));
    f.push_back(static_cast<float>(bits(policy.act_bits, l.name)));
    // The rank as a share of the full rank: a fraction as is, a count over the full rank, an
    // energy share as is (it grows with the rank kept, which is all a learned model needs).
    double rank = 1.0;
    if (auto it = policy.rank.find(l.name); it != policy.rank.end()) {
      rank = it->second;
      if (policy.factorization.rank_by == "count")
        rank = l.full_rank > 0 ? it->second / static_cast<double>(l.full_rank) : 1.0;
    }
    f.push_back(static_cast<float>(std::min(rank, 1.0)));
    auto s = policy.sparsity.find(l.name);
    f.push_back(static_cast<float>(s == policy.sparsity.end() ? 0.0 : s->second));
  }
  const auto one_hot = [&](const std::vector<std::string>& names, const std::string& chosen) {
    for (const auto& n : names) f.push_back(n == chosen ? 1.0f : 0.0f);
  };
  for (const auto& c : points_.channels) one_hot(methods_.criteria, policy.criterion_of(c.id));
  for (const auto& l : points_.layers) {
    one_hot(methods_.schemes, policy.quantization_of(l.name).scheme);
    one_hot(methods_.factorizations, policy.factorization_of(l.name).conv);
  }
  return f;
}

// ---------------------------------------------------------------------------------------------
// PredictorConfig and FitReport

PredictorConfig PredictorConfig::from_json(const nlohmann::json& j, const std::string& where) {
  const auto c = read_section<PredictorConfig>(j, where);
  check_config(c, where);
  return c;
}

nlohmann::json PredictorConfig::to_json() const { return write_section(*this); }

void PredictorConfig::check(const std::string& where) const { check_config(*this, where); }

nlohmann::json FitReport::to_json() const {
  auto stat = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
  return {{"n", n},
          {"target_std", stat(target_std)},
          {"train_rmse", stat(train_rmse)},
          {"holdout_rmse", stat(holdout_rmse)},
          {"holdout_kendall_tau", stat(holdout_kendall_tau)},
          {"folds", folds},
          {"seconds", seconds}};
}

// ---------------------------------------------------------------------------------------------
// The MLP

struct AccuracyPredictor::Model {
  int64_t features = 0;
  torch::Tensor params;                // every weight and bias, flat
  std::vector<torch::Tensor> weights;  // layer l: [in, out], a view of params
  std::vector<torch::Tensor> biases;   // layer l: [out], a view of params
  torch::Tensor x_mean, x_std;         // [features]
  double y_mean = 0, y_std = 1;

  torch::Tensor forward(const torch::Tensor& x_std_units) const {
    torch::Tensor h = x_std_units;
    for (size_t l = 0; l < weights.size(); ++l) {
      h = torch::addmm(biases[l], h, weights[l]);
      if (l + 1 < weights.size()) h = torch::relu(h);
    }
    return h.squeeze(1);
  }

  std::vector<double> predict(const torch::Tensor& x) const {
    torch::NoGradGuard no_grad;
    const torch::Tensor y = forward((x - x_mean) / x_std).to(torch::kFloat64) * y_std + y_mean;
    const double* p = y.data_ptr<double>();
    return std::vector<double>(p, p + y.size(0));
  }

  static std::unique_ptr<Model> train(const torch::Tensor& x, const torch::Tensor& y,
                                      const PredictorConfig& c, uint64_t seed);
};

// Fits a fresh model to rows `x` [n, features] and targets `y` [n] (float64), seeded by `seed`.
auto AccuracyPredictor::Model::train(const torch::Tensor& x, const torch::Tensor& y,
                                     const PredictorConfig& c, uint64_t seed)
    -> std::unique_ptr<Model> {
  torch::NoGradGuard no_grad;  // gradients are computed by hand below
  auto m = std::make_unique<Model>();
  m->features = x.size(1);
  m->x_mean = x.mean(0);
  // A constant feature is 0 after centering whatever it is divided by; divide it by 1.
  const torch::Tensor x_std = x.std(0, /*unbiased=*/false);
  m->x_std = torch::where(x_std <= kMinStd, torch::ones_like(x_std), x_std);
  m->y_mean = y.mean().item<double>();
  const double y_std = y.std(/*unbiased=*/false).item<double>();
  m->y_std = y_std > kMinStd ? y_std : 1.0;
  const torch::Tensor xs = (x - m->x_mean) / m->x_std;
  const torch::Tensor ys = ((y - m->y_mean) / m->y_std).to(torch::kFloat32);

  // Layer widths and the flat parameter layout.
  std::vector<int64_t> widths{m->features};
  for (int64_t l = 0; l < c.layers; ++l) widths.push_back(c.hidden);
  widths.push_back(1);
  int64_t total = 0;
  for (size_t l = 0; l + 1 < widths.size(); ++l) total += (widths[l] + 1) * widths[l + 1];

  // LibTorch's Linear initialization, U(-1/sqrt(in), 1/sqrt(in)), from our own generator.
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  m->params = torch::empty({total}, torch::kFloat32);
  torch::Tensor grads = torch::zeros({total}, torch::kFloat32);
  torch::Tensor decay_mask = torch::zeros({total}, torch::kFloat32);  // 1 on weights
  std::vector<torch::Tensor> weight_grads, bias_grads;  // views of `grads`, like the parameters
  {
    int64_t at = 0;
    for (size_t l = 0; l + 1 < widths.size(); ++l) {
      const int64_t in = widths[l], out = widths[l + 1];
      const double bound = 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(in, 1)));
      m->params.narrow(0, at, (in + 1) * out).uniform_(-bound, bound, gen);
      decay_mask.narrow(0, at, in * out).fill_(1.0f);
      m->weights.push_back(m->params.narrow(0, at, in * out).view({in, out}));
      m->biases.push_back(m->params.narrow(0, at + in * out, out));
      weight_grads.push_back(grads.narrow(0, at, in * out).view({in, out}));
      bias_grads.push_back(grads.narrow(0, at + in * out, out));
      at += (in + 1) * out;
    }
  }

  // Full-batch steps. The gradient of the mean squared error is written straight into the views
  // of `grads` (no autograd graph to build, no per-view gradient buffers to sum), then one AdamW
  // update of the flat parameters.
  const size_t n_layers = m->weights.size();
  const torch::Tensor ys_column = ys.unsqueeze(1);
  const double mse_scale = 2.0 / static_cast<double>(x.size(0));
  std::vector<torch::Tensor> inputs(n_layers), pre_activations(n_layers);
  torch::Tensor avg = torch::zeros_like(m->params), avg_sq = torch::zeros_like(m->params);
  for (int64_t step = 0; step < c.steps; ++step) {
    torch::Tensor h = xs;
    for (size_t l = 0; l < n_layers; ++l) {
      inputs[l] = h;
      h = torch::addmm(m->biases[l], h, m->weights[l]);
      if (l + 1 < n_layers) h = torch::relu(pre_activations[l] = h);
    }
    torch::Tensor d = h.sub_(ys_column).mul_(mse_scale);  // d loss / d output, [n, 1]
    for (size_t l = n_layers; l-- > 0;) {
      at::mm_out(weight_grads[l], inputs[l].t(), d);
      at::sum_out(bias_grads[l], d, {0});
      if (l > 0)
        d = at::threshold_backward(at::mm(d, m->weights[l].t()), pre_activations[l - 1], 0);
    }

    const double lr =
        c.lr * 0.5 *
        (1.0 + std::cos(kPi * static_cast<double>(step) / static_cast<double>(c.steps)));
    const double t = static_cast<double>(step + 1);
    const double correction1 = 1.0 - std::pow(kAdamBeta1, t);
    const double correction2 = 1.0 - std::pow(kAdamBeta2, t);
    avg.mul_(kAdamBeta1).add_(grads, 1.0 - kAdamBeta1);
    avg_sq.mul_(kAdamBeta2).addcmul_(grads, grads, 1.0 - kAdamBeta2);
    if (c.weight_decay > 0) m->params.addcmul_(m->params, decay_mask, -lr * c.weight_decay);
    const torch::Tensor denom = (avg_sq / correction2).sqrt_().add_(kAdamEps);
    m->params.addcdiv_(avg, denom, -lr / correction1);
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// AccuracyPredictor

AccuracyPredictor::AccuracyPredictor(PredictorConfig config) : config_(config) {
  check_config(config_, "predictor");
}
AccuracyPredictor::~AccuracyPredictor() = default;
AccuracyPredictor::AccuracyPredictor(AccuracyPredictor&&) noexcept = default;
AccuracyPredictor& AccuracyPredictor::operator=(AccuracyPredictor&&) noexcept = default;

bool AccuracyPredictor::fitted() const { return model_ != nullptr; }

FitReport AccuracyPredictor::fit(const std::vector<std::vector<float>>& x,
                                 const std::vector<double>& y) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n = static_cast<int64_t>(x.size());
  if (x.size() != y.size())
    throw InputError("accuracy predictor: " + std::to_string(x.size()) + " encodings but " +
                     std::to_string(y.size()) + " accuracies; pass one accuracy per policy");
  if (n < config_.min_samples)
    throw InputError("accuracy predictor: " + std::to_string(n) +
                     " scored policies, fewer than min_samples (" +
                     std::to_string(config_.min_samples) +
                     "); score more candidates before fitting, or lower predictor.min_samples");
  const size_t features = x.front().size();
  if (features == 0)
    throw InputError(
        "accuracy predictor: the encodings are empty (a network without decision "
        "points?); nothing to learn from");
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i].size() != features)
      throw InputError("accuracy predictor: encoding " + std::to_string(i) + " has " +
                       std::to_string(x[i].size()) + " values, encoding 0 has " +
                       std::to_string(features) +
                       "; encode every policy with the same PolicyEncoder");
    for (float v : x[i])
      if (!std::isfinite(v))
        throw InputError("accuracy predictor: encoding " + std::to_string(i) +
                         " has a value that is not finite; check the policies encoded");
    if (!std::isfinite(y[i]))
      throw InputError("accuracy predictor: accuracy " + std::to_string(i) +
                       " is not finite; drop failed evaluations before fitting");
  }

  ThreadsGuard threads(config_.threads);
  const torch::Tensor xt = to_tensor(x, static_cast<int64_t>(features));
  const torch::Tensor yt = torch::tensor(y, torch::kFloat64);

  FitReport r;
  r.n = n;
  r.target_std = std::sqrt(variance(y));  // population

  r.folds = config_.folds;
  r.holdout_rmse = kNaN;
  r.holdout_kendall_tau = kNaN;
  if (config_.folds >= 2) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{0});
    std::mt19937_64 rng(config_.seed);
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<double> out_of_fold(static_cast<size_t>(n));
    for (int64_t f = 0; f < config_.folds; ++f) {
      std::vector<int64_t> train_idx, test_idx;
      for (int64_t i = 0; i < n; ++i)
        (i % config_.folds == f ? test_idx : train_idx).push_back(order[static_cast<size_t>(i)]);
      const torch::Tensor tr = torch::tensor(train_idx, torch::kInt64);
      const torch::Tensor te = torch::tensor(test_idx, torch::kInt64);
      const auto m = Model::train(xt.index_select(0, tr), yt.index_select(0, tr), config_,
                                  config_.seed + 1 + static_cast<uint64_t>(f));
      const std::vector<double> p = m->predict(xt.index_select(0, te));
      for (size_t k = 0; k < test_idx.size(); ++k)
        out_of_fold[static_cast<size_t>(test_idx[k])] = p[k];
    }
    r.holdout_rmse = rmse(out_of_fold, y);
    r.holdout_kendall_tau = kendall_tau(out_of_fold, y);
  }

  model_ = Model::train(xt, yt, config_, config_.seed);
  r.train_rmse = rmse(model_->predict(xt), y);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::vector<double> AccuracyPredictor::predict(const std::vector<std::vector<float>>& x) const {
  TIGHTFIT_CHECK(model_ != nullptr, "AccuracyPredictor::predict called before fit()");
  for (size_t i = 0; i < x.size(); ++i)
    if (static_cast<int64_t>(x[i].size()) != model_->features)
      throw InputError("accuracy predictor: encoding " + std::to_string(i) + " has " +
                       std::to_string(x[i].size()) + " values, the predictor was fitted on " +
                       std::to_string(model_->features) +
                       "; encode policies of the network it was fitted for");
  if (x.empty()) return {};
  return model_->predict(to_tensor(x, model_->features));
}

}  // namespace tightfit::evaluators
