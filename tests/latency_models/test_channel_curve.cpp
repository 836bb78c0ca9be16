#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>

#include "core/errors.h"
#include "core/json.h"
#include "latency_models/channel_curve.h"
#include "latency_models/lut.h"
#include "models/zoo.h"
#include "policies/policy.h"
#include "search/space.h"
#include "targets/target.h"

using namespace tightfit;
using latency_models::ChannelCurve;
using latency_models::preferred_multiple;

namespace {

std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("tightfit_curve_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

/// A curve over the counts a layer of `channels` would be measured at, timed by `ms`.
ChannelCurve made_curve(int64_t channels, const std::function<double(int64_t)>& ms,
                        double iqr_share = 0.0) {
  ChannelCurve curve;
  curve.layer = "conv2d:made>" + std::to_string(channels);
  for (int64_t c : latency_models::curve_channels(channels)) {
    const double t = ms(c);
    curve.points.push_back({c, t, iqr_share * t});
  }
  return curve;
}

/// A fixed overhead plus one step per `block` output channels (oneDNN's padded outputs).
std::function<double(int64_t)> step(int64_t block) {
  return [block](int64_t c) { return 0.005 + 0.01 * static_cast<double>((c + block - 1) / block); };
}

}  // namespace

TEST_CASE("curve channel counts are consecutive and bounded", "[latency_models][curve]") {
  const auto c64 = latency_models::curve_channels(64);
  REQUIRE(c64.size() == 33);
  CHECK(c64.front() == 32);
  CHECK(c64.back() == 64);
  const auto c16 = latency_models::curve_channels(16);
  CHECK(c16.front() == 1);
  CHECK(c16.back() == 16);
  const auto c512 = latency_models::curve_channels(512);
  CHECK(c512.size() == 33);
  CHECK(c512.front() == 256);
  CHECK(latency_models::curve_channels(1) == std::vector<int64_t>{1});
  CHECK(latency_models::round_up(57, 8) == 64);
  CHECK(latency_models::round_up(56, 8) == 56);
}

TEST_CASE("the preferred multiple of hand-made curves", "[latency_models][curve]") {
  SECTION("a step every 8 channels gives 8") {
    CHECK(preferred_multiple({made_curve(64, step(8))}) == 8);
    CHECK(preferred_multiple({made_curve(16, step(8)), made_curve(128, step(8))}) == 8);
  }
  SECTION("a step every 16 channels gives 16") {
    CHECK(preferred_multiple({made_curve(64, step(16))}) == 16);
    CHECK(preferred_multiple({made_curve(64, step(16)), made_curve(128, step(16))}) == 16);
  }
  SECTION("a step every 64 channels gives 64") {
    CHECK(preferred_multiple({made_curve(64, step(64))}) == 64);
  }
  SECTION("a linear curve gives 1") {
    const auto linear = [](int64_t c) { return 0.001 * static_cast<double>(c); };
    CHECK(preferred_multiple({made_curve(16, linear)}) == 1);
    CHECK(preferred_multiple({made_curve(40, linear), made_curve(64, linear)}) == 1);
  }
  SECTION("no curve, or curves too short to check a multiple on, give 1") {
    CHECK(preferred_multiple({}) == 1);
    CHECK(preferred_multiple({made_curve(2, step(8))}) == 1);
  }
  SECTION("a step every 8 channels with +-2% noise still gives 8") {
    for (uint64_t seed = 1; seed <= 50; ++seed) {
      std::mt19937_64 rng(seed);
      std::uniform_real_distribution<double> noise(-0.02, 0.02);
      const auto noisy = [&](int64_t c) { return step(8)(c) * (1.0 + noise(rng)); };
      const std::vector<ChannelCurve> curves = {
          made_curve(64, noisy, 0.02), made_curve(32, noisy, 0.02), made_curve(128, noisy, 0.02)};
      INFO("seed " << seed);
      CHECK(preferred_multiple(curves) == 8);
    }
  }
}

TEST_CASE("curve layers are the largest distinct layers", "[latency_models][curve]") {
  const auto net = models::make_model("resnet20", models::default_options("resnet20"));
  const auto layers = latency_models::curve_layers(net, 3);
  REQUIRE(layers.size() == 3);
  // Every 3x3 conv of ResNet-20 does about the same work: the widest first, one per width.
  CHECK(layers[0].out_channels == 64);
  CHECK(layers[1].out_channels == 32);
  CHECK(layers[2].out_channels == 16);
  const auto more = latency_models::curve_layers(net, 4);
  REQUIRE(more.size() == 4);
  CHECK(more[3].out_channels == 64);
  CHECK(more[3].str() != more[0].str());
  CHECK(latency_models::curve_layers(net, 1000).size() <
        latency_models::layer_keys(net).size());  // duplicates left out
}

TEST_CASE("oneDNN fp32 convolutions prefer a multiple of at least 4",
          "[latency_models][curve][onednn]") {
  // Two 3x3 convolutions of a ResNet stage; outputs padded to 8 channels on AVX2 make 8 here.
  auto target = targets::make_target("cpu-onednn");
  targets::MeasureOptions opts;
  opts.min_time_ms = 20;  // per channel count, over the interleaved rounds
  std::vector<ChannelCurve> curves;
  std::ostringstream os;
  for (int64_t channels : {32, 64}) {
    latency_models::LayerKey key;
    key.op = "conv2d";
    key.in_channels = channels, key.out_channels = channels, key.in_h = 14, key.in_w = 14;
    key.kernel_h = key.kernel_w = 3, key.pad_h = key.pad_w = 1;
    key.batch_norm = true;
    key.activation = "relu";
    curves.push_back(latency_models::measure_channel_curve(key, *target, opts));
    const auto& curve = curves.back();
    CHECK(curve.layer == key.str());
    REQUIRE(curve.points.size() == static_cast<size_t>(channels == 32 ? 32 : 33));
    CHECK(curve.points.back().channels == channels);
    os << "\n" << curve.layer << ":";
    for (const auto& p : curve.points) {
      CHECK(p.median_ms > 0);
      os << " " << p.channels << ":" << p.median_ms;
    }
  }
  const int64_t m = preferred_multiple(curves);
  INFO("curves" << os.str() << "\n-> multiple " << m);
  CHECK(m >= 4);
  CHECK(m <= 32);
}

TEST_CASE("channel curves round-trip through the latency table", "[latency_models][curve]") {
  latency_models::LutContext context{"cpu-onednn", "fp32", 1, 1, "resnet20", "abc"};
  latency_models::LookupTable table(context);
  table.entries()["conv2d:1>2@3x3,k1x1,s1x1,p0x0,d1x1,g1"] = 0.5;
  table.channel_curves() = {made_curve(64, step(8), 0.01), made_curve(16, step(8))};
  table.set_preferred_channel_multiple(preferred_multiple(table.channel_curves()));
  const auto path = temp_path("curves.json");
  table.save(path);
  const auto j = read_json_file(path);
  REQUIRE(j.contains("channel_curves"));
  CHECK(j["preferred_channel_multiple"] == 8);
  CHECK(j["channel_curves"]["conv2d:made>64"][0][0] == 32);

  const auto loaded = latency_models::LookupTable::load(path, context);
  CHECK(loaded.preferred_channel_multiple() == 8);
  REQUIRE(loaded.channel_curves().size() == 2);
  for (const auto& curve : table.channel_curves()) {
    const auto it = std::find_if(loaded.channel_curves().begin(), loaded.channel_curves().end(),
                                 [&](const ChannelCurve& c) { return c.layer == curve.layer; });
    REQUIRE(it != loaded.channel_curves().end());
    REQUIRE(it->points.size() == curve.points.size());
    for (size_t i = 0; i < curve.points.size(); ++i) {
      CHECK(it->points[i].channels == curve.points[i].channels);
      CHECK(it->points[i].median_ms == Approx(curve.points[i].median_ms));
      CHECK(it->points[i].iqr_ms == Approx(curve.points[i].iqr_ms));
    }
  }

  // A table written before curves existed still loads, without them.
  auto old = j;
  old.erase("channel_curves");
  old.erase("preferred_channel_multiple");
  { std::ofstream(path) << old.dump(); }
  const auto plain = latency_models::LookupTable::load(path, context);
  CHECK(plain.channel_curves().empty());
  CHECK(plain.preferred_channel_multiple() == 0);
  CHECK(plain.entries() == table.entries());

  // [channels, ms] pairs load; malformed curves are refused with the field named.
  auto pairs = j;
  pairs["channel_curves"] = {{"conv2d:x", {{1, 0.1}, {2, 0.2}}}};
  { std::ofstream(path) << pairs.dump(); }
  const auto from_pairs = latency_models::LookupTable::load(path, context);
  REQUIRE(from_pairs.channel_curves().size() == 1);
  CHECK(from_pairs.channel_curves()[0].points[1].median_ms == Approx(0.2));
  for (const nlohmann::json& bad : {nlohmann::json{{"conv2d:x", {{1, "fast"}}}},
                                    nlohmann::json{{"conv2d:x", {{2, 0.1}, {1, 0.2}}}},
                                    nlohmann::json{{"conv2d:x", {{0, 0.1}}}},
                                    nlohmann::json{{"conv2d:x", 3}}, nlohmann::json::array()}) {
    auto broken = j;
    broken["channel_curves"] = bad;
    { std::ofstream(path) << broken.dump(); }
    CHECK_THROWS_WITH(latency_models::LookupTable::load(path, context),
                      Catch::Contains("channel_curves"));
  }
  auto negative = j;
  negative["preferred_channel_multiple"] = -8;
  { std::ofstream(path) << negative.dump(); }
  CHECK_THROWS_AS(latency_models::LookupTable::load(path, context), InputError);
}

TEST_CASE("a space's channel multiple may be \"auto\"", "[latency_models][curve][search]") {
  const auto space = search::SpaceConfig::from_json({{"channel_multiple", "auto"}}, "space");
  CHECK(space.channel_multiple == search::kAutoChannelMultiple);
  CHECK(space.to_json()["channel_multiple"] == "auto");
  CHECK(search::SpaceConfig::from_json(space.to_json(), "space").channel_multiple ==
        search::kAutoChannelMultiple);
  CHECK(search::SpaceConfig::from_json({{"channel_multiple", 16}}, "space").channel_multiple == 16);
  CHECK(search::SpaceConfig::from_json(nlohmann::json::object(), "space").channel_multiple == 8);

  for (const nlohmann::json& bad :
       {nlohmann::json("eight"), nlohmann::json("Auto"), nlohmann::json(0), nlohmann::json(-8),
        nlohmann::json(8.5), nlohmann::json(true)}) {
    INFO(bad.dump());
    CHECK_THROWS_AS(search::SpaceConfig::from_json({{"channel_multiple", bad}}, "space"),
                    ConfigError);
    CHECK_THROWS_WITH(search::SpaceConfig::from_json({{"channel_multiple", bad}}, "space"),
                      Catch::Contains("space.channel_multiple") && Catch::Contains("\"auto\""));
  }

  // Anything that rounds channels needs a number: "auto" unresolved is a clear ConfigError.
  CHECK_THROWS_WITH(space.resolved_channel_multiple("space"),
                    Catch::Contains("\"auto\"") && Catch::Contains("tightfit profile"));
  const auto net = models::make_model("resnet8", models::default_options("resnet8"));
  CHECK_THROWS_AS(search::SearchSpace(policies::decision_points(net), space), ConfigError);
  auto resolved = space;
  resolved.channel_multiple = 8;
  CHECK(search::SearchSpace(policies::decision_points(net), resolved).config().channel_multiple ==
        8);
}
