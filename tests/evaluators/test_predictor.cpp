// The learned accuracy predictor: the encoder gives one fixed-length vector per network (the
// empty policy is "uncompressed"; keep_count, rank counts and unknown points handled), the
// predictor learns a known synthetic accuracy function of random resnet8 policies well enough to
// rank held-out policies (cross-validated and on fresh policies), is deterministic for a seed
// without touching LibTorch's global generator, fits a few hundred samples in well under a
// second, and rejects too few samples, ragged rows and bad configs with a clear message.

#include <torch/torch.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/errors.h"
#include "evaluators/fidelity.h"
#include "evaluators/predictor.h"
#include "models/zoo.h"
#include "policies/policy.h"

using Catch::Matchers::Contains;
using tightfit::ConfigError;
using tightfit::InputError;
using tightfit::evaluators::AccuracyPredictor;
using tightfit::evaluators::FitReport;
using tightfit::evaluators::kendall_tau;
using tightfit::evaluators::PolicyEncoder;
using tightfit::evaluators::PredictorConfig;
using tightfit::policies::DecisionPoints;
using tightfit::policies::Policy;

// `expr` throws `Ex` with a message that `matcher` accepts (Catch2 v2's CHECK_THROWS_MATCHES
// matches the exception object, not its message).
#define CHECK_THROWS_CONTAINING(expr, Ex, matcher) \
  do {                                             \
    CHECK_THROWS_AS(expr, Ex);                     \
    CHECK_THROWS_WITH(expr, matcher);              \
  } while (0)

namespace {

const DecisionPoints& resnet8_points() {
  static const DecisionPoints dp = tightfit::policies::decision_points(
      tightfit::models::make_model("resnet8", tightfit::models::default_options("resnet8")));
  return dp;
}

/// A random joint policy over `dp`, like a search would ask: keep fractions, weight and
/// activation bits from short lists (activation bits are noise the predictor must ignore).
Policy random_policy(const DecisionPoints& dp, std::mt19937_64& rng) {
  const std::vector<double> keeps{0.25, 0.5, 0.75, 1.0};
  const std::vector<int> wbits{32, 8};
  const std::vector<int> abits{32, 8};
  auto pick = [&](const auto& v) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
  };
  Policy p;
  for (const auto& c : dp.channels)
    if (double k = pick(keeps); k < 1.0) p.keep[c.id] = k;
  for (const auto& l : dp.layers) {
    if (int b = pick(wbits); b != 32) p.weight_bits[l.name] = b;
    if (int b = pick(abits); b != 32) p.act_bits[l.name] = b;
  }
  return p;
}

/// The synthetic "true" accuracy: 0.9 - 0.3 (1 - mean keep)^2 - 0.01 x layers at 8 weight bits.
double synthetic_accuracy(const Policy& p, const DecisionPoints& dp) {
  double keep_sum = 0;
  for (const auto& c : dp.channels) keep_sum += p.keep.count(c.id) ? p.keep.at(c.id) : 1.0;
  const double mean_keep = keep_sum / static_cast<double>(dp.channels.size());
  int eight_bit = 0;
  for (const auto& [layer, bits] : p.weight_bits) eight_bit += bits == 8;
  return 0.9 - 0.3 * (1 - mean_keep) * (1 - mean_keep) - 0.01 * eight_bit;
}

struct Samples {
  std::vector<std::vector<float>> x;
  std::vector<double> y;
};

Samples make_samples(int n, uint64_t seed) {
  const auto& dp = resnet8_points();
  const PolicyEncoder enc(dp);
  std::mt19937_64 rng(seed);
  Samples s;
  for (int i = 0; i < n; ++i) {
    const Policy p = random_policy(dp, rng);
    s.x.push_back(enc.encode(p));
    s.y.push_back(synthetic_accuracy(p, dp));
  }
  return s;
}

double stddev(const std::vector<double>& v) {
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return std::sqrt(ss / static_cast<double>(v.size()));
}

double rmse(const std::vector<double>& a, const std::vector<double>& b) {
  double ss = 0;
  for (size_t i = 0; i < a.size(); ++i) ss += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(ss / static_cast<double>(a.size()));
}

}  // namespace

TEST_CASE("PolicyEncoder: fixed length, the empty policy is uncompressed", "[predictor]") {
  const auto& dp = resnet8_points();
  REQUIRE(!dp.channels.empty());
  REQUIRE(!dp.layers.empty());
  const PolicyEncoder enc(dp);
  CHECK(enc.size() == dp.channels.size() + 4 * dp.layers.size());
  CHECK(enc.feature_names().size() == enc.size());
  CHECK(enc.feature_names().front() == dp.channels.front().id + "/keep");
  CHECK(enc.feature_names().back() == dp.layers.back().name + "/sparsity");

  const std::vector<float> empty = enc.encode(Policy{});
  REQUIRE(empty.size() == enc.size());
  const size_t groups = dp.channels.size();
  for (size_t i = 0; i < groups; ++i) CHECK(empty[i] == 1.0f);  // keep everything
  for (size_t l = 0; l < dp.layers.size(); ++l) {
    const size_t at = groups + 4 * l;
    CHECK(empty[at] == 1.0f);      // 32 weight bits / 32
    CHECK(empty[at + 1] == 1.0f);  // 32 activation bits / 32
    CHECK(empty[at + 2] == 1.0f);  // full rank
    CHECK(empty[at + 3] == 0.0f);  // dense
  }

  std::mt19937_64 rng(3);
  for (int i = 0; i < 20; ++i) CHECK(enc.encode(random_policy(dp, rng)).size() == enc.size());
}

TEST_CASE("PolicyEncoder: each decision lands in its feature", "[predictor]") {
  const auto& dp = resnet8_points();
  const PolicyEncoder enc(dp);
  const auto& group = dp.channels.front();
  const auto& layer = dp.layers.front();
  const size_t groups = dp.channels.size();

  Policy p;
  p.keep[group.id] = 0.5;
  p.weight_bits[layer.name] = 8;
  p.act_bits[layer.name] = 4;
  p.sparsity[layer.name] = 0.3;
  auto f = enc.encode(p);
  CHECK(f[0] == Approx(0.5));
  CHECK(f[groups] == Approx(8.0 / 32));
  CHECK(f[groups + 1] == Approx(4.0 / 32));
  CHECK(f[groups + 2] == 1.0f);
  CHECK(f[groups + 3] == Approx(0.3));

  // keep_count wins over keep and is read as a share of the group's channels.
  p.keep_count[group.id] = group.channels / 4;
  f = enc.encode(p);
  CHECK(f[0] == Approx(static_cast<double>(group.channels / 4) / group.channels));

  // A rank given as a fraction is the feature; as a count it is divided by the full rank.
  const auto factorizable = std::find_if(dp.layers.begin(), dp.layers.end(),
                                         [](const auto& l) { return l.full_rank > 2; });
  REQUIRE(factorizable != dp.layers.end());
  const size_t at = groups + 4 * static_cast<size_t>(factorizable - dp.layers.begin());
  Policy r;
  r.rank[factorizable->name] = 0.5;
  CHECK(enc.encode(r)[at + 2] == Approx(0.5));
  r.factorization.rank_by = "count";
  r.rank[factorizable->name] = static_cast<double>(factorizable->full_rank / 2);
  CHECK(enc.encode(r)[at + 2] ==
        Approx(static_cast<double>(factorizable->full_rank / 2) / factorizable->full_rank));

  // A policy for another network is the user's mistake, named.
  Policy wrong;
  wrong.weight_bits["no_such_layer"] = 8;
  CHECK_THROWS_CONTAINING(enc.encode(wrong), ConfigError, Contains("no_such_layer"));
}

TEST_CASE("AccuracyPredictor learns a synthetic accuracy of resnet8 policies", "[predictor]") {
  const Samples train = make_samples(300, 11);
  const Samples test = make_samples(200, 12);
  const double target_std = stddev(train.y);
  REQUIRE(target_std > 0.01);

  AccuracyPredictor pred;
  const FitReport r = pred.fit(train.x, train.y);
  INFO("fit: " << r.to_json().dump());
  CHECK(pred.fitted());
  CHECK(r.n == 300);
  CHECK(r.folds == 5);
  CHECK(r.target_std == Approx(target_std));
  CHECK(r.train_rmse < 0.25 * target_std);
  CHECK(r.holdout_rmse < 0.25 * target_std);
  CHECK(r.holdout_kendall_tau > 0.8);
  CHECK(r.seconds > 0);  // its speed is measured by bench proxies, not here

  // Fresh policies the predictor never saw.
  const std::vector<double> p = pred.predict(test.x);
  REQUIRE(p.size() == test.y.size());
  const double test_rmse = rmse(p, test.y);
  const double test_tau = kendall_tau(p, test.y);
  INFO("fresh policies: rmse " << test_rmse << " (target std " << stddev(test.y) << "), tau "
                               << test_tau);
  CHECK(test_rmse < 0.25 * stddev(test.y));
  CHECK(test_tau > 0.8);

  const auto j = r.to_json();
  for (const char* key :
       {"n", "target_std", "train_rmse", "holdout_rmse", "holdout_kendall_tau", "folds", "seconds"})
    CHECK(j.contains(key));
}

TEST_CASE("AccuracyPredictor is deterministic for a seed and leaves the global RNG alone",
          "[predictor]") {
  const Samples s = make_samples(60, 5);
  PredictorConfig c;
  c.steps = 150;

  torch::manual_seed(123);
  const torch::Tensor expected = torch::randn({4});
  torch::manual_seed(123);
  AccuracyPredictor a(c);
  const FitReport ra = a.fit(s.x, s.y);
  CHECK(torch::equal(torch::randn({4}), expected));  // fitting drew nothing from it

  AccuracyPredictor b(c);
  const FitReport rb = b.fit(s.x, s.y);
  CHECK(a.predict(s.x) == b.predict(s.x));
  CHECK(ra.holdout_rmse == rb.holdout_rmse);
  CHECK(ra.train_rmse == rb.train_rmse);

  // Refitting replaces the model and gives the same result again.
  b.fit(s.x, s.y);
  CHECK(a.predict(s.x) == b.predict(s.x));

  c.seed = 1;
  AccuracyPredictor other(c);
  other.fit(s.x, s.y);
  CHECK(other.predict(s.x) != a.predict(s.x));

  // Fitting under a caller's NoGradGuard still trains.
  torch::NoGradGuard no_grad;
  AccuracyPredictor g(PredictorConfig{});
  CHECK(g.fit(s.x, s.y).train_rmse < 0.5 * stddev(s.y));
}

TEST_CASE("AccuracyPredictor: folds = 0 skips cross-validation", "[predictor]") {
  const Samples s = make_samples(40, 8);
  PredictorConfig c;
  c.folds = 0;
  c.steps = 100;
  AccuracyPredictor pred(c);
  const FitReport r = pred.fit(s.x, s.y);
  CHECK(r.folds == 0);
  CHECK(std::isnan(r.holdout_rmse));
  CHECK(std::isnan(r.holdout_kendall_tau));
  CHECK(r.to_json().at("holdout_rmse").is_null());
  CHECK(pred.predict({s.x.front()}).size() == 1);
  CHECK(pred.predict({}).empty());
}

TEST_CASE("AccuracyPredictor: user mistakes are clear errors", "[predictor]") {
  const Samples s = make_samples(30, 9);
  AccuracyPredictor pred;  // min_samples 20

  const std::vector<std::vector<float>> few(s.x.begin(), s.x.begin() + 19);
  const std::vector<double> few_y(s.y.begin(), s.y.begin() + 19);
  CHECK_THROWS_CONTAINING(pred.fit(few, few_y), InputError, Contains("min_samples (20)"));
  CHECK_FALSE(pred.fitted());

  CHECK_THROWS_CONTAINING(pred.fit(s.x, few_y), InputError, Contains("one accuracy per policy"));
  auto ragged = s.x;
  ragged[7].pop_back();
  CHECK_THROWS_CONTAINING(pred.fit(ragged, s.y), InputError, Contains("encoding 7"));
  auto bad_y = s.y;
  bad_y[3] = std::nan("");
  CHECK_THROWS_CONTAINING(pred.fit(s.x, bad_y), InputError, Contains("not finite"));
  CHECK_THROWS_AS(pred.predict(s.x), tightfit::InternalError);  // before fit: a bug

  PredictorConfig c;
  c.steps = 50;
  AccuracyPredictor fitted(c);
  fitted.fit(s.x, s.y);
  CHECK_THROWS_CONTAINING(fitted.predict({std::vector<float>(3, 1.0f)}), InputError,
                          Contains("fitted on"));
}

TEST_CASE("PredictorConfig: strict JSON with defaults", "[predictor]") {
  const PredictorConfig d = PredictorConfig::from_json(nullptr, "predictor");
  CHECK(d.hidden == 64);
  CHECK(d.layers == 2);
  CHECK(d.min_samples == 20);

  const auto j = nlohmann::json{{"hidden", 32},      {"layers", 1},         {"steps", 200},
                                {"lr", 0.005},       {"weight_decay", 0.0}, {"folds", 4},
                                {"min_samples", 30}, {"seed", 9},           {"threads", 1}};
  const PredictorConfig c = PredictorConfig::from_json(j, "predictor");
  CHECK(c.to_json() == j);
  CHECK(PredictorConfig::from_json(c.to_json(), "predictor").to_json() == j);

  CHECK_THROWS_CONTAINING(PredictorConfig::from_json({{"hiden", 3}}, "predictor"), ConfigError,
                          Contains("hiden"));
  CHECK_THROWS_CONTAINING(PredictorConfig::from_json({{"hidden", "big"}}, "predictor"), ConfigError,
                          Contains("predictor.hidden"));
  CHECK_THROWS_CONTAINING(PredictorConfig::from_json({{"folds", 1}}, "predictor"), ConfigError,
                          Contains("folds"));
  CHECK_THROWS_CONTAINING(PredictorConfig::from_json({{"lr", 0.0}}, "predictor"), ConfigError,
                          Contains("lr"));
  CHECK_THROWS_CONTAINING(
      PredictorConfig::from_json({{"min_samples", 3}, {"folds", 5}}, "predictor"), ConfigError,
      Contains("min_samples"));
  CHECK_THROWS_AS(PredictorConfig::from_json({{"hidden", 0}}, "predictor"), ConfigError);

  // A config built in code is checked too.
  PredictorConfig one_fold;
  one_fold.folds = 1;
  CHECK_THROWS_CONTAINING(AccuracyPredictor(one_fold), ConfigError, Contains("predictor.folds"));
}
