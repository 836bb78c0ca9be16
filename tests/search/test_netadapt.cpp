// The `netadapt` strategy on a synthetic problem: latency is a weighted sum of the channels kept
// per group (a stand-in for the latency lookup table) and accuracy a concave function of them,
// with one group far more important than the rest. No training, no data, no target.

#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/errors.h"
#include "models/zoo.h"
#include "policies/compress.h"
#include "search/strategies/netadapt.h"
#include "search/strategy.h"
#include "tests/search/resnet8.h"

using namespace tightfit;

namespace {

constexpr auto points = test_support::resnet8_points;

search::SearchSpace make_space(const nlohmann::json& j = nlohmann::json::object()) {
  return search::SearchSpace(points(), search::SpaceConfig::from_json(j, "space"));
}

double keep_of(const policies::Policy& p, const std::string& group) {
  return p.keep.count(group) ? p.keep.at(group) : 1.0;
}

/// The group accuracy depends on most: the first one.
const std::string& important_group() { return points().channels.front().id; }

/// ms: kept channels of each group x a per-group weight (later groups cost more per channel).
double predict(const policies::Policy& p) {
  double ms = 0;
  for (size_t i = 0; i < points().channels.size(); ++i) {
    const auto& c = points().channels[i];
    ms += keep_of(p, c.id) * static_cast<double>(c.channels) * 1e-3 * (1.0 + 0.25 * i);
  }
  return ms;
}

/// Concave in the share kept per group; the important group weighs 50 times the others.
search::Evaluation evaluate(const policies::Policy& p) {
  constexpr double kImportance = 50.0;
  double acc = 0, total = 0;
  for (const auto& c : points().channels) {
    const double w = c.id == important_group() ? kImportance : 1.0;
    acc += w * std::sqrt(keep_of(p, c.id));
    total += w;
  }
  search::Evaluation e;
  e.policy = p;
  e.accuracy = 0.9 * acc / total;
  e.latency_ms = predict(p);
  e.latency_source = "lut";
  return e;
}

/// One ask() as the test saw it: the step target then in force and the policies handed out.
struct Ask {
  double target_ms;
  std::vector<policies::Policy> policies;
  size_t steps_done;  ///< history().size() once this batch was told
};

/// Runs `s` to the end in batches of `batch`; every result comes from `eval`.
std::vector<Ask> drive(
    search::NetAdaptStrategy& s, size_t batch,
    const std::function<search::Evaluation(const policies::Policy&)>& eval = evaluate) {
  std::vector<Ask> asks;
  for (int guard = 0; guard < 10000; ++guard) {
    auto asked = s.ask(batch);
    if (asked.empty()) break;
    REQUIRE(asked.size() <= batch);
    asks.push_back({s.target_ms(), asked, 0});
    std::vector<search::Evaluation> told;
    for (const auto& p : asked) {
      CHECK_NOTHROW(policies::validate(p, points()));
      told.push_back(eval(p));
    }
    s.tell(told);
    asks.back().steps_done = s.history().size();
  }
  return asks;
}

std::vector<std::string> keys(const std::vector<Ask>& asks) {
  std::vector<std::string> out;
  for (const auto& a : asks)
    for (const auto& p : a.policies) out.push_back(p.key());
  return out;
}

search::NetAdaptStrategy make(const search::SearchSpace& space, const nlohmann::json& j) {
  return search::NetAdaptStrategy(search::NetAdaptConfig::from_json(j, "strategy"), space, predict);
}

}  // namespace

TEST_CASE("netadapt proposals meet each step's target, one group at a time", "[search][netadapt]") {
  const auto space = make_space();  // joint: keep and weight bits
  auto s = make(space, {{"steps", 6}, {"reduction", 0.08}, {"reduction_decay", 0.9}});
  CHECK(s.name() == "netadapt");
  const auto asks = drive(s, 3);
  REQUIRE(s.history().size() == 6);
  CHECK(s.stop_reason() == "steps");
  CHECK(s.ask(3).empty());

  policies::Policy current;  // the uncompressed start
  double current_ms = s.start_latency_ms();
  double reduction = 0.08;
  size_t step = 0;
  for (const auto& a : asks) {
    const auto& won = s.history().at(step);
    CHECK(a.target_ms == Approx(won.target_ms));
    CHECK(a.target_ms == Approx(current_ms * (1 - reduction)));
    for (const auto& p : a.policies) {
      CHECK(predict(p) <= a.target_ms);
      // Bits are never touched, and exactly one group is pruned further than the current policy.
      CHECK(p.weight_bits.empty());
      int changed = 0;
      for (const auto& c : points().channels) {
        CHECK(keep_of(p, c.id) <= keep_of(current, c.id));
        changed += keep_of(p, c.id) < keep_of(current, c.id);
      }
      CHECK(changed == 1);
    }
    if (a.steps_done == step) continue;  // the step has more batches to come
    REQUIRE(a.steps_done == step + 1);
    CHECK(won.latency_ms <= won.target_ms);
    CHECK(won.latency_ms == Approx(predict(won.policy)));
    CHECK(won.latency_ms <= current_ms * (1 - reduction) + 1e-12);
    current = won.policy;
    current_ms = won.latency_ms;
    reduction *= 0.9;
    ++step;
  }
  CHECK(step == 6);
}

TEST_CASE("netadapt keeps the best proposal and prunes the important group least",
          "[search][netadapt]") {
  const auto space = make_space({{"kind", "pruning"}});
  auto s = make(space, {{"steps", 8}, {"reduction", 0.05}});
  drive(s, 100);
  REQUIRE(s.history().size() == 8);
  const auto& final_policy = s.history().back().policy;
  const double important_keep = keep_of(final_policy, important_group());
  double least_keep = 1.0;
  for (const auto& c : points().channels) {
    CHECK(important_keep >= keep_of(final_policy, c.id));
    least_keep = std::min(least_keep, keep_of(final_policy, c.id));
  }
  CHECK(important_keep > least_keep);
  // Each step's winner is the most accurate of its proposals.
  for (const auto& h : s.history()) CHECK(h.accuracy == Approx(evaluate(h.policy).accuracy));
  for (size_t i = 1; i < s.history().size(); ++i)
    CHECK(s.history()[i].latency_ms <= s.history()[i - 1].latency_ms * 0.95 + 1e-12);
}

TEST_CASE("netadapt is deterministic and batch-size independent", "[search][netadapt]") {
  const auto space = make_space();
  const nlohmann::json config = {{"steps", 5}, {"reduction", 0.05}};
  auto a = make(space, config);
  auto b = make(space, config);
  auto c = make(space, config);
  const auto ka = keys(drive(a, 4));
  CHECK(!ka.empty());
  CHECK(keys(drive(b, 4)) == ka);
  CHECK(keys(drive(c, 1)) == ka);
  // Through the registry too; the seed changes nothing.
  auto r = search::make_strategy("netadapt", config, space, 123, predict);
  CHECK(r->name() == "netadapt");
  std::vector<std::string> kr;
  for (auto asked = r->ask(7); !asked.empty(); asked = r->ask(7)) {
    std::vector<search::Evaluation> told;
    for (const auto& p : asked) {
      kr.push_back(p.key());
      told.push_back(evaluate(p));
    }
    r->tell(told);
  }
  CHECK(kr == ka);
}

TEST_CASE("netadapt stops at final_latency_ms or when no group can reach the target",
          "[search][netadapt]") {
  const auto space = make_space({{"kind", "pruning"}});
  const double start_ms = predict(policies::Policy{});
  const double final_ms = 0.6 * start_ms;
  auto s = make(space, {{"steps", 100}, {"reduction", 0.15}, {"final_latency_ms", final_ms}});
  const auto asks = drive(s, 5);
  CHECK(s.stop_reason() == "final_latency");
  REQUIRE(!s.history().empty());
  for (const auto& a : asks) CHECK(a.target_ms >= final_ms);
  CHECK(s.history().back().latency_ms <= final_ms);
  for (size_t i = 0; i + 1 < s.history().size(); ++i) CHECK(s.history()[i].latency_ms > final_ms);

  // Without a final target, steps go on until no single group can meet the next target.
  auto u = make(space, {{"steps", 1000}, {"reduction", 0.2}});
  drive(u, 8);
  CHECK(u.stop_reason() == "unreachable");
  CHECK(u.history().size() < 1000);
  CHECK(u.ask(8).empty());
}

TEST_CASE("netadapt never picks a failed proposal", "[search][netadapt]") {
  const auto space = make_space({{"kind", "pruning"}});
  // Pruning the last group always fails, though it would be the most accurate choice.
  const auto& fragile = points().channels.back().id;
  auto failing = [&](const policies::Policy& p) {
    auto e = evaluate(p);
    if (keep_of(p, fragile) < 1.0) e.error = "timeout";
    if (keep_of(p, fragile) < 1.0) e.accuracy = 1.0;
    return e;
  };
  auto s = make(space, {{"steps", 4}});
  drive(s, 2, failing);
  REQUIRE(s.history().size() == 4);
  for (const auto& h : s.history()) CHECK(keep_of(h.policy, fragile) == 1.0);

  auto all_fail = [](const policies::Policy& p) {
    auto e = evaluate(p);
    e.error = "crashed";
    return e;
  };
  auto f = make(space, {{"steps", 4}});
  drive(f, 2, all_fail);
  CHECK(f.history().empty());
  CHECK(f.stop_reason() == "all_failed");
}

TEST_CASE("netadapt config and predictor errors are user errors", "[search][netadapt]") {
  const auto space = make_space();
  CHECK_THROWS_AS(search::make_strategy("netadapt", nlohmann::json::object(), space, 1),
                  ConfigError);
  CHECK_THROWS_WITH(search::make_strategy("netadapt", nlohmann::json::object(), space, 1),
                    "strategy netadapt needs latency-table cost: set \"cost\": {\"latency\": "
                    "\"lut\", ...}");
  CHECK_THROWS_WITH(search::make_strategy("netadapt", {{"step", 3}}, space, 1, predict),
                    Catch::Contains("unknown key 'step'") &&
                        Catch::Contains("steps, reduction, reduction_decay, final_latency_ms"));
  CHECK_THROWS_AS(search::make_strategy("netadapt", {{"reduction", 1.0}}, space, 1, predict),
                  ConfigError);
  CHECK_THROWS_AS(search::make_strategy("netadapt", {{"steps", 0}}, space, 1, predict),
                  ConfigError);
  CHECK_THROWS_AS(search::make_strategy("netadapt", {{"reduction_decay", 1.5}}, space, 1, predict),
                  ConfigError);
  CHECK_THROWS_AS(
      search::make_strategy("netadapt", {{"final_latency_ms", -1.0}}, space, 1, predict),
      ConfigError);
  // A space with nothing to prune.
  const auto quant = make_space({{"kind", "quantization"}});
  CHECK_THROWS_WITH(search::make_strategy("netadapt", {}, quant, 1, predict),
                    Catch::Contains("no channel-keep choices"));
}
