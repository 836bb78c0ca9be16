// The BN-recalibration and fine-tuning proxies on real Fashion-MNIST: what each may change, the
// distillation loss, and that a 0-step fine-tune is exactly the subset score.

#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "core/errors.h"
#include "datasets/fashion_mnist.h"
#include "evaluators/bn_recal.h"
#include "evaluators/finetune.h"
#include "graph/executor.h"
#include "models/train.h"
#include "models/zoo.h"
#include "policies/compress.h"

using namespace tightfit;

namespace {

const datasets::Split& data() {
  static const auto d = datasets::load_fashion_mnist();
  return d;
}

graph::Network resnet8() {
  return models::make_model("resnet8", models::default_options("resnet8"));
}

/// A few batches of training so BN statistics and weights are not at their initial values.
graph::Network briefly_trained() {
  static const graph::Network net = [] {
    auto n = resnet8();
    models::TrainOptions o;
    o.epochs = 1;
    o.max_steps = 60;
    o.progress = false;
    o.final_evaluation = false;
    models::train_model(n, data(), o);
    return n;
  }();
  return net;
}

bool is_bn_statistic(const graph::Node& n, const std::string& param) {
  return n.op == graph::OpKind::kBatchNorm && (param == "running_mean" || param == "running_var");
}

}  // namespace

TEST_CASE("distillation loss is zero when the student equals the teacher", "[evaluators]") {
  torch::manual_seed(3);
  const auto teacher = torch::randn({16, 10});
  for (double t : {1.0, 4.0}) {
    CHECK(models::distillation_loss(teacher.clone(), teacher, t).item<double>() ==
          Approx(0.0).margin(1e-7));
    const auto other = teacher + torch::randn({16, 10});
    CHECK(models::distillation_loss(other, teacher, t).item<double>() > 1e-3);
  }
  // The gradient vanishes at the teacher too: distillation leaves a perfect student alone.
  auto student = teacher.clone().requires_grad_(true);
  models::distillation_loss(student, teacher, 4.0).backward();
  CHECK(student.grad().abs().max().item<double>() < 1e-6);
}

TEST_CASE("bn-recal changes only BatchNorm statistics", "[evaluators]") {
  const auto before = briefly_trained();
  graph::Executor ex(before);
  evaluators::recalibrate_bn(ex, data(), 4, 64, 5);
  graph::Network after = before;
  ex.write_back(after);
  size_t statistics = 0, changed = 0;
  for (int i = 0; i < before.size(); ++i) {
    const auto& a = before.node(i);
    for (const auto& [param, t] : a.params) {
      const auto& u = after.node(i).params.at(param);
      if (is_bn_statistic(a, param)) {
        ++statistics;
        changed += t.data != u.data;
      } else {
        INFO(a.name << "." << param);
        CHECK(t.data == u.data);
      }
    }
  }
  CHECK(statistics > 0);
  CHECK(changed == statistics);
}

TEST_CASE("finetune with 0 steps equals subset; more steps train", "[evaluators]") {
  const auto net = resnet8();  // untrained: a few steps must raise its accuracy
  policies::Policy p;
  for (const auto& c : policies::decision_points(net).channels) p.keep[c.id] = 0.5;
  const auto candidate = policies::apply(net, p);

  auto subset = evaluators::make_evaluator("subset", {{"validation_images", 500}}, data());
  auto zero = evaluators::make_evaluator(
      "finetune", {{"steps", 0}, {"validation_images", 500}, {"bn_batches", 0}}, data());
  const auto a = subset->evaluate(candidate, net);
  const auto b = zero->evaluate(candidate, net);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a.accuracy == b.accuracy);
  CHECK(a.loss == b.loss);
  CHECK(a.images == 500);

  auto tuned = evaluators::make_evaluator(
      "finetune", {{"steps", 60}, {"validation_images", 500}, {"distill", false}, {"threads", 2}},
      data());
  const auto c = tuned->evaluate(candidate, net);
  REQUIRE(c.ok());
  CHECK(c.accuracy > a.accuracy + 0.2);
  CHECK(c.loss < a.loss);
  // The candidate itself is left as it was.
  CHECK(subset->evaluate(candidate, net).accuracy == a.accuracy);
}

TEST_CASE("fine-tuning keeps pruning masks and the quantization grid", "[evaluators]") {
  const auto net = briefly_trained();
  const auto dp = policies::decision_points(net);
  policies::Policy p;
  p.sparsity[dp.layers[1].name] = 0.6;
  p.weight_bits[dp.layers[1].name] = 4;
  p.weight_bits[dp.layers[2].name] = 8;
  const auto candidate = policies::apply(net, p);
  REQUIRE(candidate.masks.count(dp.layers[1].name));

  const auto config = evaluators::FinetuneConfig::from_json(
      {{"steps", 20}, {"distill", true}, {"threads", 2}}, "evaluator");
  auto opts = config.train_options(net);
  CHECK(opts.teacher == &net);
  policies::CompressedNetwork tuned = candidate;
  evaluators::finetune_compressed(tuned, data(), opts, 1);

  const auto& mask = candidate.masks.at(dp.layers[1].name);
  const auto& w4 = tuned.net.node(tuned.net.find(dp.layers[1].name)).params.at("weight");
  const auto& w4_before =
      candidate.net.node(candidate.net.find(dp.layers[1].name)).params.at("weight");
  CHECK(w4.data != w4_before.data);  // it trained
  const int64_t out = w4.shape[0];
  const int64_t per_channel = static_cast<int64_t>(w4.data.size()) / out;
  for (int64_t o = 0; o < out; ++o) {
    std::set<float> values;
    for (int64_t k = 0; k < per_channel; ++k) {
      const size_t i = static_cast<size_t>(o * per_channel + k);
      if (mask.data[i] == 0.0f) CHECK(w4.data[i] == 0.0f);
      values.insert(w4.data[i]);
    }
    CHECK(values.size() <= 16);  // 4 bits: at most 15 symmetric levels, zero included
  }
  // Symmetric per-channel weights come out of training on the policy's grid already: putting
  // them back on it changes nothing, and neither does the size.
  policies::CompressedNetwork again = tuned;
  policies::requantize_weights(again, 1);
  for (const auto& layer : {dp.layers[1].name, dp.layers[2].name}) {
    const auto& a = tuned.net.node(tuned.net.find(layer)).params.at("weight").data;
    const auto& b = again.net.node(again.net.find(layer)).params.at("weight").data;
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) CHECK(b[i] == Approx(a[i]).margin(1e-6));
  }
  CHECK(policies::size_bytes(again) == policies::size_bytes(candidate));
}

TEST_CASE("fine-tuning ends on the policy's own quantizer: k-means codebooks, binary signs",
          "[evaluators]") {
  const auto net = briefly_trained();
  const auto dp = policies::decision_points(net);
  const auto config = evaluators::FinetuneConfig::from_json(
      {{"steps", 15}, {"distill", false}, {"threads", 2}}, "evaluator");

  SECTION("k-means: at most 2^b distinct values per tensor, pruned weights stay zero") {
    policies::Policy p;
    p.quantization.scheme = "kmeans";
    p.sparsity[dp.layers[1].name] = 0.5;
    for (const auto& l : dp.layers) p.weight_bits[l.name] = 3;
    const auto candidate = policies::apply(net, p);
    policies::CompressedNetwork tuned = candidate;
    auto opts = config.train_options(net);
    opts.final_evaluation = true;
    const auto r = evaluators::finetune_compressed(tuned, data(), opts, 5);
    for (const auto& l : dp.layers) {
      const auto& w = tuned.net.node(tuned.net.find(l.name)).params.at("weight");
      const auto& before = candidate.net.node(candidate.net.find(l.name)).params.at("weight");
      CHECK(w.data != before.data);  // it trained
      std::set<float> values(w.data.begin(), w.data.end());
      values.erase(0.0f);  // the mask's zeros are not a centroid
      CHECK(values.size() <= 8);
      // Counted as stored: 3-bit codes, a codebook of at most 8 centroids (empty clusters drop;
      // one may be 0, erased above) holding every value.
      const auto& info = tuned.layers.at(l.name);
      CHECK(info.scheme == "kmeans");
      CHECK(info.code_bytes == candidate.layers.at(l.name).code_bytes);
      CHECK(info.metadata_bytes <= static_cast<int64_t>(8 * sizeof(float)));
      CHECK(info.metadata_bytes >= static_cast<int64_t>(values.size() * sizeof(float)));
    }
    const auto& mask = candidate.masks.at(dp.layers[1].name);
    const auto& w = tuned.net.node(tuned.net.find(dp.layers[1].name)).params.at("weight");
    for (size_t i = 0; i < w.data.size(); ++i)
      if (mask.data[i] == 0.0f) CHECK(w.data[i] == 0.0f);
    // The accuracy reported is the returned network's, codebooks and all; training through the
    // codebooks (not a symmetric grid projected onto them afterwards) keeps what it learned.
    graph::Executor ex(tuned.net);
    CHECK(r.test_accuracy == models::evaluate(ex, data().test, data().mean, data().std).accuracy);
    graph::Executor cut(candidate.net);
    const double before = models::evaluate(cut, data().test, data().mean, data().std).accuracy;
    WARN("3-bit k-means resnet8: test accuracy " << before << " as cut, " << r.test_accuracy
                                                 << " after 15 steps");
    CHECK(r.test_accuracy > before);
  }

  SECTION("binary: +-mean|w| per output channel") {
    policies::Policy p;
    p.quantization.scheme = "binary";
    p.weight_bits[dp.layers[2].name] = 1;
    const auto candidate = policies::apply(net, p);
    policies::CompressedNetwork tuned = candidate;
    evaluators::finetune_compressed(tuned, data(), config.train_options(net), 5);
    const auto& w = tuned.net.node(tuned.net.find(dp.layers[2].name)).params.at("weight");
    CHECK(w.data !=
          candidate.net.node(candidate.net.find(dp.layers[2].name)).params.at("weight").data);
    const int64_t per_channel = w.numel() / w.shape[0];
    for (int64_t o = 0; o < w.shape[0]; ++o) {
      std::set<float> magnitudes;
      for (int64_t k = 0; k < per_channel; ++k)
        magnitudes.insert(std::fabs(w.data[static_cast<size_t>(o * per_channel + k)]));
      CHECK(magnitudes.size() == 1);
    }
  }
}

TEST_CASE("finetune config is strict", "[evaluators]") {
  using evaluators::FinetuneConfig;
  CHECK_THROWS_WITH(FinetuneConfig::from_json({{"stpes", 3}}, "evaluator"),
                    Catch::Contains("valid keys") && Catch::Contains("steps"));
  CHECK_THROWS_AS(FinetuneConfig::from_json({{"steps", -1}}, "evaluator"), ConfigError);
  CHECK_THROWS_AS(FinetuneConfig::from_json({{"optimizer", "lbfgs"}}, "evaluator"), ConfigError);
  CHECK_THROWS_AS(FinetuneConfig::from_json({{"validation_images", 0}}, "evaluator"), ConfigError);
  const auto c = FinetuneConfig::from_json({{"steps", 7}, {"bn_batches", 3}}, "evaluator");
  CHECK(c.steps == 7);
  CHECK(c.score.bn_batches == 3);
  CHECK(FinetuneConfig::from_json(c.to_json(), "evaluator").to_json() == c.to_json());
  CHECK_THROWS_WITH(evaluators::make_evaluator("fine-tune", nullptr, data()),
                    Catch::Contains("finetune"));
}
