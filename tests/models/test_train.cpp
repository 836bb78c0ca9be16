#include <catch2/catch.hpp>
#include <cmath>
#include <set>
#include <thread>

#include "core/errors.h"
#include "datasets/fashion_mnist.h"
#include "models/train.h"
#include "models/zoo.h"

using namespace tightfit;

TEST_CASE("fine-tuning keeps masks applied and weights on their quantization grid",
          "[models][train]") {
  const auto data = datasets::load_fashion_mnist();
  graph::Network net = models::make_model("vgg_small", models::default_options("vgg_small"));
  // Mask every other weight of classifier.0; quantize features.4 to 4 bits.
  const auto& w = net.node(net.find("classifier.0")).params.at("weight");
  graph::Tensor mask(w.shape, 1.0f);
  for (size_t k = 0; k < mask.data.size(); k += 2) mask.data[k] = 0.0f;
  models::TrainOptions opts;
  opts.epochs = 1;
  opts.max_steps = 5;
  opts.threads = 2;
  opts.progress = false;
  opts.masks["classifier.0"] = mask;
  opts.weight_bits["features.4"] = 4;
  const auto r = models::train_model(net, data, opts);
  CHECK(std::isfinite(r.train_loss));
  CHECK(r.steps == 5);
  const auto& trained = net.node(net.find("classifier.0")).params.at("weight");
  for (size_t k = 0; k < trained.data.size(); k += 2) REQUIRE(trained.data[k] == 0.0f);
  // 4 bits symmetric: at most 15 distinct values per output channel.
  const auto& q = net.node(net.find("features.4")).params.at("weight");
  const int64_t per = q.numel() / q.shape[0];
  for (int64_t o = 0; o < q.shape[0]; ++o) {
    std::set<float> values(q.data.begin() + o * per, q.data.begin() + (o + 1) * per);
    CHECK(values.size() <= 15);
  }
  // Constraints on layers that do not exist are user errors.
  models::TrainOptions bad = opts;
  bad.weight_bits = {{"no.such.layer", 8}};
  bad.masks.clear();
  CHECK_THROWS_AS(models::train_model(net, data, bad), InputError);
}

TEST_CASE("trainings with one seed give the same weights even when they run at once",
          "[models][train]") {
  // vgg_small has dropout: its masks come from the executor's generator, seeded by the training
  // seed, not from LibTorch's global one, which concurrent trainings (parallel evaluators) share.
  const auto data = datasets::load_fashion_mnist();
  const graph::Network initial =
      models::make_model("vgg_small", models::default_options("vgg_small"));
  models::TrainOptions opts;
  opts.epochs = 1;
  opts.max_steps = 4;
  opts.batch_size = 32;
  opts.threads = 1;
  opts.progress = false;
  opts.seed = 7;
  auto weights = [](const graph::Network& n) {
    return n.node(n.find("classifier.0")).params.at("weight").data;
  };
  graph::Network alone = initial;
  models::train_model(alone, data, opts);
  std::vector<graph::Network> together(2, initial);
  std::vector<std::thread> threads;
  for (auto& n : together) threads.emplace_back([&] { models::train_model(n, data, opts); });
  for (auto& t : threads) t.join();
  CHECK(weights(together[0]) == weights(alone));
  CHECK(weights(together[1]) == weights(alone));
  // The seed matters: another one draws other masks (and batches).
  graph::Network other = initial;
  opts.seed = 8;
  models::train_model(other, data, opts);
  CHECK(weights(other) != weights(alone));
}
