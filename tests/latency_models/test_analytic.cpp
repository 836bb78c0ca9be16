// The analytic latency models, as targets whose measurements are modelled and as cost models.

#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "core/errors.h"
#include "latency_models/analytic.h"
#include "models/zoo.h"
#include "policies/compress.h"

using namespace tightfit;

TEST_CASE("analytic targets are labelled modelled and follow bits and channels",
          "[targets][analytic]") {
  const auto net = models::make_model("resnet8", models::default_options("resnet8"));
  const auto points = policies::decision_points(net);
  auto bitfusion = latency_models::make_target("analytic-bitfusion");
  auto roofline = latency_models::make_target("analytic-roofline");
  targets::MeasureOptions opts;
  auto latency = [&](targets::Target& t, int weight_bits, int act_bits, double keep) {
    policies::Policy p;
    for (const auto& l : points.layers) {
      if (weight_bits < 32) p.weight_bits[l.name] = weight_bits;
      if (act_bits < 32) p.act_bits[l.name] = act_bits;
    }
    for (const auto& c : points.channels) p.keep[c.id] = keep;
    // Activation bits need calibration data: random images stand in here.
    policies::Calibration calibration;
    calibration.images.push_back(torch::randn({8, 1, 28, 28}));
    calibration.labels.push_back(torch::zeros({8}, torch::kLong));
    policies::ApplyOptions apply_opts;
    apply_opts.calibration = &calibration;
    const auto m = t.measure(policies::apply(net, p, apply_opts), opts);
    REQUIRE(m.ok());
    CHECK(m.modelled);
    CHECK(m.to_json().value("modelled", false));
    return m.median_ms;
  };
  // Bit-serial: fewer bits, proportionally fewer brick-cycles.
  const double b8 = latency(*bitfusion, 8, 8, 1.0);
  const double b4 = latency(*bitfusion, 4, 4, 1.0);
  const double b2 = latency(*bitfusion, 2, 2, 1.0);
  CHECK(b4 < b8);
  CHECK(b2 < b4);
  // Pruning lowers both models' latency.
  CHECK(latency(*bitfusion, 8, 8, 0.5) < b8);
  const double r32 = latency(*roofline, 32, 32, 1.0);
  CHECK(latency(*roofline, 32, 32, 0.5) < r32);
}

TEST_CASE("the roofline's device figures come from its config or from this machine",
          "[latency_models][analytic]") {
  // Given figures are used as given; fp16 defaults to the fp32 peak.
  const auto given =
      latency_models::RooflineSpec::from_json(
          {{"fp32_gflops", 50.0}, {"int8_gops", 150.0}, {"bandwidth_gbps", 10.0}}, "device")
          .completed();
  CHECK(given.fp32_gflops == 50.0);
  CHECK(given.int8_gops == 150.0);
  CHECK(given.fp16_gflops == 50.0);
  CHECK(given.bandwidth_gbps == 10.0);

  // Absent figures are measured: a real core does between 1 and 1000 GFLOPS and copies between
  // 0.5 and 500 GB/s; int8 is at least not much slower than fp32.
  const auto measured = latency_models::RooflineSpec().completed();
  CHECK(measured.fp32_gflops > 1.0);
  CHECK(measured.fp32_gflops < 1000.0);
  CHECK(measured.int8_gops > 0.5 * measured.fp32_gflops);
  CHECK(measured.bandwidth_gbps > 0.5);
  CHECK(measured.bandwidth_gbps < 500.0);

  CHECK_THROWS_WITH(latency_models::RooflineSpec::from_json({{"fp32_gflop", 1.0}}, "device"),
                    Catch::Contains("valid keys: device, fp32_gflops"));
  CHECK_THROWS_AS(latency_models::RooflineSpec::from_json({{"int8_gops", -1.0}}, "device"),
                  ConfigError);
}

TEST_CASE("analytic cost models predict what their formulas say, int8 at the int8 peak",
          "[latency_models][analytic]") {
  const auto net = models::make_model("vgg_small", models::default_options("vgg_small"));
  const auto points = policies::decision_points(net);
  policies::Policy int8;
  for (const auto& l : points.layers) int8.weight_bits[l.name] = 8;
  const auto fp32_net = policies::apply(net, {});
  const auto int8_net = policies::apply(net, int8);
  const nlohmann::json device = {
      {"fp32_gflops", 50.0}, {"int8_gops", 200.0}, {"bandwidth_gbps", 1000.0}};
  targets::MeasureOptions opts;
  opts.precision = "int8";

  auto section =
      latency_models::CostSection::from_json({{"latency", "roofline"}, {"device", device}}, "cost");
  auto graph_net = net;
  latency_models::CostContext context;
  auto target = latency_models::make_target("analytic-roofline");
  context.target = target.get();
  context.measure = opts;
  context.net = &graph_net;
  auto roofline = latency_models::make_cost_model(section, context);
  CHECK_FALSE(roofline->times_on_target());
  CHECK(roofline->source() == "modelled");
  const auto got = roofline->predict({&fp32_net, &int8_net});
  REQUIRE(got[0].ok());
  REQUIRE(got[1].ok());
  const auto spec = latency_models::RooflineSpec::from_json(device, "device").completed();
  CHECK(got[0].ms == Approx(latency_models::roofline_ms(fp32_net, spec, opts)));
  // With ample bandwidth the layers are compute-bound: 8-bit weights run at 4x the peak.
  CHECK(got[1].ms == Approx(got[0].ms / 4.0).epsilon(0.05));

  CHECK_THROWS_WITH(latency_models::CostSection::from_json(
                        {{"latency", "bitfusion"}, {"device", {{"bricks", 0}}}}, "cost"),
                    Catch::Contains("bricks"));
  CHECK_THROWS_WITH(latency_models::CostSection::from_json({{"latency", "guess"}}, "cost"),
                    Catch::Contains("valid values: measure, lut, bitfusion, roofline"));
}
