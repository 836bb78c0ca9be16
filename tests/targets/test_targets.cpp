#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "core/errors.h"
#include "models/zoo.h"
#include "policies/compress.h"
#include "targets/target.h"
#include "targets/timing.h"

using namespace tightfit;

TEST_CASE("quantile interpolates between order statistics", "[targets]") {
  CHECK(targets::quantile({4, 1, 3, 2}, 0.5) == Approx(2.5));
  CHECK(targets::quantile({1, 2, 3, 4, 5}, 0.25) == Approx(2.0));
  CHECK(targets::quantile({7}, 0.75) == Approx(7.0));
}

TEST_CASE("cpu-libtorch measures with the requested protocol and records its context",
          "[targets]") {
  auto target = targets::make_target("cpu-libtorch");
  const auto net = models::make_model("resnet8", models::default_options("resnet8"));
  const auto c = policies::apply(net, {});
  targets::MeasureOptions opts;
  opts.threads = 1;
  opts.warmup_runs = 2;
  opts.min_repeats = 7;
  opts.min_time_ms = 1;
  opts.batch = 2;
  const auto m = target->measure(c, opts);
  REQUIRE(m.ok());
  CHECK(m.samples >= 7);
  CHECK(m.median_ms > 0);
  CHECK(m.min_ms <= m.median_ms);
  CHECK(m.iqr_ms >= 0);
  CHECK(m.threads == 1);
  CHECK(m.batch == 2);
  CHECK(m.target == "cpu-libtorch");
  CHECK(m.precision == "fp32");
}

TEST_CASE("a network that cannot run is a failed measurement, not an exception", "[targets]") {
  auto target = targets::make_target("cpu-libtorch");
  auto net = models::make_model("vgg_small", models::default_options("vgg_small"));
  policies::CompressedNetwork c;
  c.net = net;
  // Break a weight's shape: the executor refuses the network.
  c.net.node(c.net.find("features.0")).params.at("weight").shape[0] = 3;
  targets::MeasureOptions opts;
  opts.min_repeats = 1;
  opts.warmup_runs = 0;
  targets::Measurement m;
  REQUIRE_NOTHROW(m = target->measure(c, opts));
  CHECK_FALSE(m.ok());
  CHECK_THAT(m.error, Catch::Contains("features.0"));
}

TEST_CASE("unknown target lists the valid ones", "[targets]") {
  CHECK_THROWS_WITH(targets::make_target("gpu-9000"), Catch::Contains("cpu-libtorch"));
}

TEST_CASE("the protocol re-measures a suspect spread and says so", "[targets][protocol]") {
  // Runs that alternate between ~1 ms and ~6 ms: IQR / median stays far above 10% however often
  // it is measured, so every attempt is made and the result is flagged.
  int calls = 0;
  auto uneven = [&] {
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::microseconds(calls++ % 2 ? 6000 : 1000);
    while (std::chrono::steady_clock::now() < until) {
    }
  };
  targets::MeasureOptions opts;
  opts.warmup_runs = 1;
  opts.min_repeats = 8;
  opts.min_time_ms = 1;
  opts.max_attempts = 3;
  targets::Measurement m;
  targets::time_runs(uneven, opts, m);
  CHECK(m.attempts == 3);
  CHECK(m.suspect);
  CHECK(m.samples >= 8);
  CHECK(m.iqr_ms / m.median_ms >= targets::kSuspectSpread);
  CHECK(m.cv > 0.2);
  CHECK(m.min_ms <= m.median_ms);
}

TEST_CASE("measure options are parsed strictly", "[targets][protocol]") {
  const auto o = targets::MeasureOptions::from_json(
      {{"precision", "int8"}, {"threads", 2}, {"max_attempts", 2}}, "target");
  CHECK(o.precision == "int8");
  CHECK(o.threads == 2);
  CHECK(o.max_attempts == 2);
  CHECK_THROWS_WITH(targets::MeasureOptions::from_json({{"repeats", 3}}, "target"),
                    Catch::Contains("valid keys: precision, threads"));
  CHECK_THROWS_AS(targets::MeasureOptions::from_json({{"max_attempts", 0}}, "target"), ConfigError);
}
