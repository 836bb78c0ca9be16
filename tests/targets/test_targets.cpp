#include <catch2/catch.hpp>

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
  CHECK_THROWS_WITH(targets::make_target("gpu-9000"),
                    Catch::Contains("valid targets: cpu-libtorch"));
}
