#include <torch/torch.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/errors.h"
#include "graph/hash.h"
#include "latency_models/analytic.h"
#include "latency_models/lut.h"
#include "models/zoo.h"
#include "policies/compress.h"
#include "targets/int8.h"
#include "targets/onednn_engine.h"
#include "targets/target.h"

using namespace tightfit;

namespace {
std::string temp_path(const std::string& name) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("tightfit_lut_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}
}  // namespace

TEST_CASE("layer keys describe the fused layers of a network", "[latency_models][lut]") {
  const auto net = models::make_model("resnet8", models::default_options("resnet8"));
  const auto keys = latency_models::layer_keys(net);
  REQUIRE(keys.size() == 10);  // 7 convs + 2 downsample + fc
  CHECK(keys.front().str() == "conv2d:1>16@28x28,k3x3,s1x1,p1x1,d1x1,g1,bn,relu");
  CHECK(keys.back().op == "linear");
  // The one-layer network of a key has that key.
  for (const auto& k : keys) {
    const auto one = latency_models::layer_network(k);
    const auto again = latency_models::layer_keys(one);
    REQUIRE(again.size() == 1);
    CHECK(again.front().str() == k.str());
  }
}

TEST_CASE("a table profiled on an additive target predicts it exactly", "[latency_models][lut]") {
  // The roofline model is a sum over conv/linear layers: the table's sum must reproduce it.
  const auto net = models::make_model("vgg_small", models::default_options("vgg_small"));
  auto target = latency_models::make_target("analytic-roofline");
  targets::MeasureOptions opts;
  latency_models::LutContext context{"analytic-roofline",       "fp32", 1, 1, "vgg_small",
                                     graph::structure_hash(net)};
  latency_models::LookupTable table(context);
  policies::Policy half;
  for (const auto& c : policies::decision_points(net).channels) half.keep[c.id] = 0.5;
  const auto pruned = policies::apply(net, half);
  auto keys = latency_models::layer_keys(net);
  const auto pruned_keys = latency_models::layer_keys(pruned.net);
  keys.insert(keys.end(), pruned_keys.begin(), pruned_keys.end());
  size_t calls = 0;
  latency_models::profile(table, keys, *target, opts, [&](size_t, size_t) { ++calls; });
  CHECK(calls == table.entries().size());
  CHECK(table.entries().size() <= keys.size());
  const auto full = policies::apply(net, {});
  const double sum_full = table.layer_sum_ms(full.net);
  const double sum_pruned = table.layer_sum_ms(pruned.net);
  CHECK(sum_full == Approx(target->measure(full, opts).median_ms).epsilon(1e-9));
  CHECK(sum_pruned == Approx(target->measure(pruned, opts).median_ms).epsilon(1e-9));
  table.calibrate({sum_full, sum_pruned}, {2 * sum_full + 1, 2 * sum_pruned + 1});
  CHECK(table.scale() == Approx(2.0));
  CHECK(table.offset_ms() == Approx(1.0));
  CHECK(table.predict({&pruned}).front() == Approx(2 * sum_pruned + 1));
  // Measurements in the reverse order of the sums (noise, too few points) never give a negative
  // scale: the fit falls back to the ratio through the origin.
  auto reversed = table;
  reversed.calibrate({sum_full, sum_pruned}, {1.0, 2.0});
  CHECK(reversed.scale() == Approx(3.0 / (sum_full + sum_pruned)));
  CHECK(reversed.offset_ms() == 0);

  // Round trip through the file format.
  const auto path = temp_path("vgg.json");
  table.save(path);
  const auto loaded = latency_models::LookupTable::load(path, context);
  CHECK(loaded.entries() == table.entries());
  CHECK(loaded.scale() == Approx(table.scale()));
  CHECK(loaded.offset_ms() == Approx(table.offset_ms()));

  // A table for another target or model is refused, naming the mismatch.
  auto other = context;
  other.target = "cpu-onednn";
  CHECK_THROWS_WITH(latency_models::LookupTable::load(path, other),
                    Catch::Contains("profiled for target 'analytic-roofline', not 'cpu-onednn'"));
  other = context;
  other.model_hash =
      graph::structure_hash(models::make_model("resnet8", models::default_options("resnet8")));
  CHECK_THROWS_WITH(latency_models::LookupTable::load(path, other),
                    Catch::Contains("model structure"));
  // A layer the table never saw is an error that says how to fix it.
  const auto resnet = models::make_model("resnet8", models::default_options("resnet8"));
  CHECK_THROWS_WITH(table.layer_sum_ms(resnet), Catch::Contains("tightfit profile"));
}

TEST_CASE("corrupt latency tables are refused", "[latency_models][lut]") {
  const auto path = temp_path("corrupt.json");
  { std::ofstream(path) << "{\"format\": \"tightfit-latency-table\", \"version\": 1, \"entr"; }
  CHECK_THROWS_WITH(latency_models::LookupTable::load(path, {}), Catch::Contains("corrupt"));
  { std::ofstream(path) << R"({"format": "tightfit-latency-table", "version": 1})"; }
  CHECK_THROWS_WITH(latency_models::LookupTable::load(path, {}), Catch::Contains("corrupt"));
  { std::ofstream(path) << R"({"something": "else"})"; }
  CHECK_THROWS_WITH(latency_models::LookupTable::load(path, {}),
                    Catch::Contains("not a tightfit latency table"));
  CHECK_THROWS_AS(latency_models::LookupTable::load(temp_path("missing.json"), {}), InputError);
}

TEST_CASE("a table reports its own accuracy and keeps it in its file", "[latency_models][lut]") {
  const auto net = models::make_model("vgg_small", models::default_options("vgg_small"));
  latency_models::LookupTable table(
      {"analytic-roofline", "fp32", 1, 1, "vgg_small", graph::structure_hash(net)});
  CHECK(table.accuracy().is_null());  // nothing fitted or checked yet
  table.entries()["conv2d:x"] = 1.0;
  // A line through (1, 3) and (2, 5) fits exactly; a third point off the line does not.
  table.calibrate({1.0, 2.0}, {3.0, 5.0});
  CHECK(table.accuracy()["calibration_rmspe"].get<double>() == Approx(0.0).margin(1e-12));
  table.calibrate({1.0, 2.0, 3.0}, {3.0, 5.0, 9.0});
  const double rmspe = table.accuracy()["calibration_rmspe"].get<double>();
  CHECK(rmspe > 0.01);
  table.set_check({{"policies", 4}, {"rmspe", 0.05}});

  const auto path = std::filesystem::temp_directory_path() /
                    ("tightfit_lut_accuracy_" + std::to_string(::getpid()) + ".json");
  table.save(path.string());
  const auto back = latency_models::LookupTable::load(path.string(), table.context());
  CHECK(back.accuracy()["calibration_rmspe"].get<double>() == Approx(rmspe));
  CHECK(back.accuracy()["check"]["rmspe"].get<double>() == Approx(0.05));
  std::filesystem::remove(path);
}

TEST_CASE(
    "a table built for a space with ranks covers every factorized layer it reaches, "
    "whichever factorization",
    "[latency_models][lut]") {
  // The roofline target sums its layers: a table that covers a factorized network's layers
  // reproduces its time exactly, whatever the keep fractions and ranks.
  const auto net = models::make_model("resnet8", models::default_options("resnet8"));
  const auto points = policies::decision_points(net);
  auto target = latency_models::make_target("analytic-roofline");
  const targets::MeasureOptions opts;
  latency_models::SpaceReach reach;
  reach.keep = {0.5, 0.75, 1.0};
  reach.channel_multiple = 4;
  const std::vector<double> ranks = {1.0, 0.5, 0.25};
  for (const auto& l : points.layers) {
    reach.rank[l.name] = ranks;
    reach.factorization[l.name] = {"tucker2", "spatial"};
  }

  std::mt19937_64 rng(7);
  const auto draw = [&] {
    policies::Policy p;
    for (const auto& c : points.channels)
      p.keep[c.id] = reach.keep[std::uniform_int_distribution<size_t>(0, 2)(rng)];
    for (const auto& l : points.layers)
      if (const double r = ranks[std::uniform_int_distribution<size_t>(0, 2)(rng)]; r < 1.0) {
        p.rank[l.name] = r;
        if (rng() % 2) p.factorizations[l.name] = "spatial";
      }
    return p;
  };
  policies::ApplyOptions apply_opts;
  apply_opts.channel_multiple = reach.channel_multiple;

  // Without the ranks in its reach a table has no entry for the factors.
  latency_models::LookupTable whole({"analytic-roofline", "fp32", 1, 1, "resnet8", ""});
  auto no_rank = reach;
  no_rank.rank.clear();
  latency_models::build_table(whole, net, no_rank, {policies::Policy{}}, *target, opts, opts, {});
  policies::Policy factorized;
  factorized.rank[points.layers.at(1).name] = 0.5;
  CHECK_THROWS_WITH(whole.layer_sum_ms(policies::apply(net, factorized, apply_opts).net),
                    Catch::Contains("no entry for layer"));

  latency_models::LookupTable table({"analytic-roofline", "fp32", 1, 1, "resnet8", ""});
  latency_models::build_table(table, net, reach, {policies::Policy{}, draw(), draw()}, *target,
                              opts, opts, {});
  CHECK(table.entries().size() > whole.entries().size());
  int factorized_layers = 0, spatial = 0;
  for (int k = 0; k < 20; ++k) {
    const auto c = policies::apply(net, draw(), apply_opts);
    for (const auto& report : c.lowrank) {
      factorized_layers += report.applied;
      spatial += report.applied && report.kind == "spatial";
    }
    CHECK(table.layer_sum_ms(c.net) == Approx(target->measure(c, opts).median_ms).epsilon(1e-9));
  }
  CHECK(factorized_layers > 20);  // the policies really factorized layers
  CHECK(spatial > 5);             // both ways
}

TEST_CASE("an int8 table prices each layer in the precision it runs in and the steps between",
          "[latency_models][lut][int8]") {
  // features.4 and features.8 of vgg_small take 8-bit weights and inputs on a 7-bit grid, which
  // runs in int8 on every CPU (exact without VNNI too); the other layers stay fp32.
  const auto net = models::make_model("vgg_small", models::default_options("vgg_small"));
  const auto points = policies::decision_points(net);
  policies::Policy mixed;
  mixed.quantization.reduce_range = true;
  for (const char* layer : {"features.4", "features.8"}) {
    mixed.weight_bits[layer] = 8;
    mixed.act_bits[layer] = 8;
  }
  torch::manual_seed(1);
  policies::Calibration calibration;  // non-negative pixels: the first layer could run in int8
  calibration.images.push_back(torch::rand({8, 1, 28, 28}));
  policies::ApplyOptions opts;
  opts.calibration = &calibration;
  const auto c = policies::apply(net, mixed, opts);
  const auto keys = latency_models::layer_keys(c.net, "int8");
  std::vector<std::string> int8, steps;
  for (const auto& k : keys) {
    if (k.int8) int8.push_back(k.str());
    if (k.op == "quantize" || k.op == "fake_quant") steps.push_back(k.str());
  }
  REQUIRE(int8.size() == 2);
  CHECK_THAT(int8[0], Catch::StartsWith("conv2d:32>64@14x14"));
  CHECK_THAT(int8[1], Catch::StartsWith("conv2d:64>64@7x7"));
  // The first int8 layer's input is quantized from features.0's fp32 output; features.4 writes
  // the codes features.8 reads (through its BN, ReLU and max pool).
  CHECK(steps == std::vector<std::string>{"quantize:32@14x14"});
  // The engine runs what the keys say: a test that fails when no layer ran in int8.
  CHECK(targets::OneDnnEngine(c.net, 1, "int8").int8_layers() == 2);
  // In an fp32 table the same network is fp32 throughout, its fake_quants fp32 loops.
  std::vector<std::string> fp32_steps;
  for (const auto& k : latency_models::layer_keys(c.net, "fp32")) {
    CHECK_FALSE(k.int8);
    if (k.op == "fake_quant") fp32_steps.push_back(k.str());
  }
  CHECK(fp32_steps == std::vector<std::string>{"fake_quant:32@14x14", "fake_quant:64@7x7"});

  // A table for a space with 8-bit weights and inputs holds both precisions and the steps, and
  // predicts the mixed network from them.
  auto target = latency_models::make_target("cpu-onednn");
  targets::MeasureOptions measure;
  measure.precision = "int8";
  measure.min_time_ms = 1;
  measure.warmup_runs = 1;
  measure.min_repeats = 3;
  latency_models::SpaceReach reach;
  reach.act_quant = reach.int8 = true;
  latency_models::LookupTable table(
      latency_models::LutContext::of("cpu-onednn", measure, "vgg_small", net));
  policies::Policy uniform8;  // every layer 8-bit
  uniform8.quantization.reduce_range = true;
  for (const auto& l : points.layers) uniform8.weight_bits[l.name] = uniform8.act_bits[l.name] = 8;
  latency_models::build_table(table, net, reach, {policies::Policy{}, uniform8, mixed}, *target,
                              measure, measure, {});
  for (const auto& k : keys) CHECK(table.entries().count(k.str()) == 1);
  CHECK(table.entries().count("quantize:64@7x7") == 1);  // reached, though not used above
  const double predicted = table.predict({&c}).front();
  CHECK(predicted > 0);
  CHECK(std::isfinite(predicted));
}

TEST_CASE("a bf16 table prices bf16-weight layers as bf16 only where the CPU runs them",
          "[latency_models][lut][bf16]") {
  const auto net = models::make_model("resnet8", models::default_options("resnet8"));
  policies::Policy bf16;
  bf16.quantization.float16 = "bf16";
  const auto points = policies::decision_points(net);
  bf16.weight_bits[points.layers.at(1).name] = 16;
  const auto c = policies::apply(net, bf16);
  int64_t flagged = 0;
  for (const auto& k : latency_models::layer_keys(c.net, "bf16")) flagged += k.bf16;
  CHECK(flagged == (targets::cpu_has_bf16() ? 1 : 0));
  for (const auto& k : latency_models::layer_keys(c.net, "fp32")) CHECK_FALSE(k.bf16);
  // A bf16 key's one-layer network holds bfloat16 weights, which the engine runs in bf16.
  latency_models::LayerKey key = latency_models::layer_keys(net).at(1);
  key.bf16 = true;
  CHECK_THAT(key.str(), Catch::EndsWith(",bf16"));
  const auto one = latency_models::layer_network(key);
  CHECK(targets::OneDnnEngine(one, 1, "bf16").bf16_layers() == (targets::cpu_has_bf16() ? 1 : 0));
  key.bf16 = false;
  CHECK(targets::OneDnnEngine(latency_models::layer_network(key), 1, "bf16").bf16_layers() == 0);
}
