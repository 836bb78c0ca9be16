// The search space's genome and the genetic strategies (evolution, nsga2) on a synthetic
// problem: accuracy and latency are cheap deterministic functions of the policy, so the tests
// need no training, no data and no target.

#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <set>

#include "core/json.h"
#include "models/zoo.h"
#include "policies/compress.h"
#include "search/moo.h"
#include "search/screen.h"
#include "search/strategies/evolution.h"
#include "search/strategies/nsga2.h"
#include "search/strategies/random.h"
#include "search/strategy.h"
#include "tests/search/resnet8.h"

using namespace tightfit;

namespace {

constexpr auto net = test_support::resnet8;
constexpr auto points = test_support::resnet8_points;

search::SearchSpace make_space(const nlohmann::json& j) {
  return search::SearchSpace(points(), search::SpaceConfig::from_json(j, "space"));
}

/// Latency grows with the channels kept and the bits; accuracy is concave in the channels kept
/// (the first channels matter most) and drops a little per quantized layer.
search::Evaluation synthetic(const policies::Policy& p) {
  search::Evaluation e;
  e.policy = p;
  double channels = 0, kept = 0, acc = 0;
  std::map<std::string, double> kept_of_layer;
  for (const auto& c : points().channels) {
    const double k = p.keep.count(c.id) ? p.keep.at(c.id) : 1.0;
    channels += static_cast<double>(c.channels);
    kept += k * static_cast<double>(c.channels);
    acc += std::sqrt(k) * static_cast<double>(c.channels);
    for (const auto& l : c.layers) kept_of_layer[l] = k;
  }
  double bits_share = 0, size = 0;
  for (const auto& l : points().layers) {
    const int bits = p.weight_bits.count(l.name) ? p.weight_bits.at(l.name) : 32;
    bits_share += bits / 32.0;
    const double k = kept_of_layer.count(l.name) ? kept_of_layer.at(l.name) : 1.0;
    size += static_cast<double>(l.weight_params) * k * bits / 8.0;
  }
  bits_share /= static_cast<double>(points().layers.size());
  e.latency_ms = kept / channels * (0.5 + 0.5 * bits_share);
  e.accuracy = 0.9 * acc / channels - 0.002 * static_cast<double>(p.weight_bits.size());
  e.size_bytes = static_cast<int64_t>(size);
  e.flops = static_cast<int64_t>(e.latency_ms * 1e6);
  return e;
}

/// Runs a strategy to the end with `evaluate`; returns every evaluation in ask order.
std::vector<search::Evaluation> drive(
    search::Strategy& s, size_t batch,
    const std::function<search::Evaluation(const policies::Policy&)>& evaluate = synthetic) {
  std::vector<search::Evaluation> all;
  for (;;) {
    const auto asked = s.ask(batch);
    if (asked.empty()) break;
    REQUIRE(asked.size() <= batch);
    std::vector<search::Evaluation> told;
    for (const auto& p : asked) {
      CHECK_NOTHROW(policies::validate(p, points()));
      told.push_back(evaluate(p));
      told.back().index = static_cast<int64_t>(all.size());
      all.push_back(told.back());
    }
    s.tell(told);
  }
  return all;
}

std::vector<std::string> keys(const std::vector<search::Evaluation>& evs) {
  std::vector<std::string> k;
  for (const auto& e : evs) k.push_back(e.policy.key());
  return k;
}

/// Dominated area of (-accuracy, latency), both bounded by the reference (0, 1.1).
double hv(const std::vector<search::Evaluation>& evs) {
  std::vector<std::vector<double>> pts;
  for (const auto& e : evs)
    if (e.ok()) pts.push_back({-e.accuracy, e.latency_ms});
  return search::hypervolume(pts, {0.0, 1.1});
}

const nlohmann::json kSmallEvolution = {
    {"population", 16}, {"parents", 4}, {"mutations", 6}, {"crossovers", 6}, {"iterations", 4}};
const nlohmann::json kSmallNsga2 = {
    {"population", 12}, {"generations", 4}, {"objectives", {"accuracy", "latency"}}};

}  // namespace

TEST_CASE("space kinds pick the dimensions that vary", "[search][space]") {
  const nlohmann::json all = {{"weight_bits", {32, 8, 4}},
                              {"act_bits", {32, 8}},
                              {"rank", {1.0, 0.5, 0.25}},
                              {"sparsity", {0.0, 0.5}}};
  std::mt19937_64 rng(7);
  auto sample_many = [&](const search::SearchSpace& space) {
    std::vector<policies::Policy> out;
    for (int i = 0; i < 60; ++i) {
      out.push_back(space.sample(rng));
      CHECK_NOTHROW(policies::validate(out.back(), net()));
    }
    return out;
  };

  auto j = all;
  j["kind"] = "pruning";
  for (const auto& p : sample_many(make_space(j))) {
    CHECK(p.weight_bits.empty());
    CHECK(p.act_bits.empty());
    CHECK(p.rank.empty());
    CHECK(p.sparsity.empty());
  }
  j["kind"] = "quantization";
  bool any_act = false;
  for (const auto& p : sample_many(make_space(j))) {
    CHECK(p.keep.empty());
    CHECK(p.rank.empty());
    CHECK(p.sparsity.empty());
    any_act = any_act || !p.act_bits.empty();
  }
  CHECK(any_act);
  j["kind"] = "lowrank";
  for (const auto& p : sample_many(make_space(j))) {
    CHECK(p.keep.empty());
    CHECK(p.weight_bits.empty());
    CHECK(p.act_bits.empty());
    CHECK(p.sparsity.empty());
  }
  // Joint: every dimension shows up somewhere; rank and sparsity never share a layer.
  std::set<std::string> seen;
  for (const auto& p : sample_many(make_space(all))) {
    if (!p.keep.empty()) seen.insert("keep");
    if (!p.weight_bits.empty()) seen.insert("weight_bits");
    if (!p.act_bits.empty()) seen.insert("act_bits");
    if (!p.rank.empty()) seen.insert("rank");
    if (!p.sparsity.empty()) seen.insert("sparsity");
    for (const auto& [layer, r] : p.rank) CHECK(p.sparsity.count(layer) == 0);
  }
  CHECK(seen.size() == 5);
}

TEST_CASE("genomes decode to valid policies; the identity genome to the empty one",
          "[search][space]") {
  const auto space = make_space({{"act_bits", {32, 8}}, {"rank", {1.0, 0.5}}});
  REQUIRE(space.num_genes() > 0);
  for (size_t g = 0; g < space.num_genes(); ++g) {
    CHECK(space.choices(g) >= 2);
    CHECK(space.gene_name(g).find('/') != std::string::npos);
  }
  const auto empty = space.decode(space.identity_genome());
  CHECK(empty.key().empty());
  CHECK(empty.keep.empty());
  CHECK(empty.weight_bits.empty());
  CHECK(empty.act_bits.empty());
  CHECK(empty.rank.empty());

  std::mt19937_64 a(3), b(3);
  for (int i = 0; i < 50; ++i) {
    const auto g = space.sample_genome(a);
    REQUIRE(g.size() == space.num_genes());
    for (size_t k = 0; k < g.size(); ++k) CHECK((g[k] >= 0 && g[k] < space.choices(k)));
    CHECK_NOTHROW(policies::validate(space.decode(g), net()));
    CHECK(space.sample(b).key() == space.decode(g).key());  // sample == decode(sample_genome)
  }

  // Uniform baselines: the same keep (up to rounding) and bits on every decision point.
  const auto u = space.decode(space.uniform_genome(0.5, 8));
  CHECK_NOTHROW(policies::validate(u, net()));
  for (const auto& c : points().channels) {
    const double k = u.keep.count(c.id) ? u.keep.at(c.id) : 1.0;
    CHECK(policies::channels_to_keep(c.channels, k, 8) ==
          policies::channels_to_keep(c.channels, 0.5, 8));
  }
  CHECK(u.weight_bits.size() == points().layers.size());
  for (const auto& [layer, bits] : u.weight_bits) CHECK(bits == 8);
  CHECK(u.act_bits.empty());
  CHECK(u.rank.empty());
  CHECK(space.uniform(1.0, 32).key().empty());
}

TEST_CASE("overrides pin, narrow and exclude layers", "[search][space]") {
  const auto& layers = points().layers;
  const std::string first = layers.front().name, last = layers.back().name;
  const std::string mid = layers[layers.size() / 2].name;
  const std::string excluded = layers[1].name;
  const auto space =
      make_space({{"weight_bits", {32, 8, 4}},
                  {"act_bits", {32, 8, 4}},
                  {"pin_first_last_bits", 8},
                  {"overrides", {{mid, {{"weight_bits", {4}}}}, {excluded, "exclude"}}}});
  std::vector<std::string> excluded_groups;
  for (const auto& c : points().channels)
    for (const auto& l : c.layers)
      if (l == excluded) excluded_groups.push_back(c.id);
  REQUIRE(!excluded_groups.empty());
  for (size_t g = 0; g < space.num_genes(); ++g) {
    const auto name = space.gene_name(g);
    for (const auto& pinned : {first, last}) {  // their channel groups still vary
      CHECK(name != pinned + "/weight_bits");
      CHECK(name != pinned + "/act_bits");
    }
    CHECK(name.rfind(excluded + "/", 0) != 0);
  }
  std::mt19937_64 rng(11);
  for (int i = 0; i < 40; ++i) {
    const auto p = space.sample(rng);
    CHECK_NOTHROW(policies::validate(p, net()));
    CHECK(p.weight_bits.at(first) == 8);
    CHECK(p.weight_bits.at(last) == 8);
    CHECK(p.act_bits.at(first) == 8);
    CHECK(p.act_bits.at(last) == 8);
    CHECK(p.weight_bits.at(mid) == 4);
    CHECK(p.weight_bits.count(excluded) == 0);
    CHECK(p.act_bits.count(excluded) == 0);
    CHECK(p.rank.count(excluded) == 0);
    CHECK(p.sparsity.count(excluded) == 0);
    for (const auto& id : excluded_groups) CHECK(p.keep.count(id) == 0);
  }

  // Unknown layer names, kinds and keys are ConfigErrors that list what is valid.
  CHECK_THROWS_WITH(make_space({{"overrides", {{"no_such_layer", "exclude"}}}}),
                    Catch::Contains("no_such_layer") && Catch::Contains(first));
  CHECK_THROWS_AS(make_space({{"overrides", {{"no_such_layer", "exclude"}}}}), ConfigError);
  CHECK_THROWS_WITH(make_space({{"overrides", {{first, "skip"}}}}), Catch::Contains("exclude"));
  CHECK_THROWS_WITH(make_space({{"kind", "prune"}}), Catch::Contains("valid kinds: joint"));
  CHECK_THROWS_WITH(make_space({{"bits", {8}}}), Catch::Contains("pin_first_last_bits"));
  CHECK_THROWS_WITH(make_space({{"act_bits", {5}}}), Catch::Contains("act_bits"));
  CHECK_THROWS_WITH(make_space({{"rank", {0.0}}}), Catch::Contains("(0, 1]"));
}

TEST_CASE("values a decision point does not allow are dropped; an empty space is an error",
          "[search][space]") {
  // 1-bit weights need the binary scheme: dropped everywhere, 8 bits kept.
  const auto space = make_space({{"kind", "quantization"}, {"weight_bits", {32, 8, 1}}});
  REQUIRE(space.num_genes() == points().layers.size());
  for (size_t g = 0; g < space.num_genes(); ++g) {
    CHECK(space.choices(g) == 2);
    CHECK(space.gene_value(g, 1) == 8);
  }
  // Fractions that round to the same channel count are one choice.
  const auto pruning = make_space({{"kind", "pruning"}});
  for (size_t g = 0; g < pruning.num_genes(); ++g) {
    std::set<int64_t> counts;
    const auto id = pruning.gene_name(g).substr(0, pruning.gene_name(g).find('/'));
    int64_t channels = 0;
    for (const auto& c : points().channels)
      if (c.id == id) channels = c.channels;
    for (int k = 0; k < pruning.choices(g); ++k)
      counts.insert(policies::channels_to_keep(channels, pruning.gene_value(g, k), 8));
    CHECK(counts.size() == static_cast<size_t>(pruning.choices(g)));
  }
  CHECK_THROWS_WITH(make_space({{"kind", "lowrank"}}), Catch::Contains("empty search space"));
  CHECK_THROWS_WITH(make_space({{"keep", {1.0}}, {"weight_bits", {8}}}),
                    Catch::Contains("empty search space"));
  // The config round-trips through JSON.
  const auto c = search::SpaceConfig::from_json(
      {{"kind", "quantization"}, {"overrides", {{"x", "exclude"}, {"y", {{"act_bits", {8}}}}}}},
      "space");
  CHECK(search::SpaceConfig::from_json(c.to_json(), "space").to_json() == c.to_json());
}

TEST_CASE("evolution has MetaPruning's defaults and a strict config", "[search][evolution]") {
  const search::EvolutionConfig c;
  CHECK(c.population == 50);
  CHECK(c.parents == 10);
  CHECK(c.mutations == 25);
  CHECK(c.mutation_prob == 0.1);
  CHECK(c.crossovers == 25);
  CHECK(c.iterations == 20);
  CHECK_FALSE(c.max_latency_ms);
  const auto parsed = search::EvolutionConfig::from_json(nlohmann::json::object(), "strategy");
  CHECK(parsed.population == 50);
  CHECK(parsed.iterations == 20);
  const auto space = make_space(nullptr);
  CHECK_THROWS_WITH(search::make_strategy("evolution", {{"populaton", 5}}, space, 1),
                    Catch::Contains("valid keys") && Catch::Contains("max_latency_ms"));
  CHECK_THROWS_AS(search::make_strategy("evolution", {{"mutation_prob", 0}}, space, 1),
                  ConfigError);
  CHECK_THROWS_WITH(search::make_strategy("nsga2", {{"objectives", {"speed"}}}, space, 1),
                    Catch::Contains("valid objectives"));
  CHECK_THROWS_WITH(search::make_strategy("nsga2", {{"pop", 5}}, space, 1),
                    Catch::Contains("valid keys"));

  // With the defaults: 20 generations of 50 distinct policies.
  auto s = search::make_strategy("evolution", nlohmann::json::object(), space, 9);
  const auto evs = drive(*s, 16);
  CHECK(evs.size() == 1000);
  const auto k = keys(evs);
  CHECK(std::set<std::string>(k.begin(), k.end()).size() == k.size());
}

TEST_CASE("genetic strategies are reproducible and never repeat a policy",
          "[search][evolution][nsga2]") {
  const auto space = make_space({{"act_bits", {32, 8}}});
  for (const auto& [name, config] :
       std::vector<std::pair<std::string, nlohmann::json>>{{"evolution", kSmallEvolution},
                                                           {"nsga2", kSmallNsga2},
                                                           {"random", {{"evaluations", 30}}}}) {
    INFO(name);
    auto run = [&, &name = name, &config = config](uint64_t seed, size_t batch) {
      auto s = search::make_strategy(name, config, space, seed);
      CHECK(s->name() == name);
      return keys(drive(*s, batch));
    };
    const auto a = run(5, 5);
    CHECK(!a.empty());
    CHECK(std::set<std::string>(a.begin(), a.end()).size() == a.size());
    CHECK(run(5, 5) == a);
    CHECK(run(5, 7) == a);  // the batch size changes nothing
    CHECK(run(6, 5) != a);
  }
  auto evo = search::make_strategy("evolution", kSmallEvolution, space, 1);
  CHECK(drive(*evo, 100).size() == 16 * 4);
  auto nsga = search::make_strategy("nsga2", kSmallNsga2, space, 1);
  CHECK(drive(*nsga, 100).size() == 12 * 4);
}

TEST_CASE("evolution enforces budgets by rejection and returns the best within budget",
          "[search][evolution]") {
  const auto space = make_space(nullptr);
  constexpr double kBudgetMs = 0.45;
  auto config = kSmallEvolution;
  config["max_latency_ms"] = kBudgetMs;
  search::EvolutionStrategy s(search::EvolutionConfig::from_json(config, "strategy"), space, 3);
  // Some candidates fail with a perfect score: failures must never become parents.
  auto evaluate = [](const policies::Policy& p) {
    auto e = synthetic(p);
    if (std::hash<std::string>{}(p.key()) % 5 == 0) {
      e.error = "synthetic failure";
      e.accuracy = 1.0;
      e.latency_ms = 0.0;
    }
    return e;
  };
  std::vector<search::Evaluation> all;
  for (;;) {
    const auto asked = s.ask(6);
    if (asked.empty()) break;
    std::vector<search::Evaluation> told;
    for (const auto& p : asked) told.push_back(evaluate(p));
    all.insert(all.end(), told.begin(), told.end());
    s.tell(told);
    for (const auto& parent : s.parents()) {
      CHECK(parent.ok());
      CHECK(parent.latency_ms <= kBudgetMs);
      CHECK(std::isfinite(s.fitness(parent)));
    }
  }
  CHECK(all.size() == 16 * 4);
  CHECK(s.parents().size() == 4);
  double best = -1;
  size_t feasible = 0, over = 0;
  for (const auto& e : all) {
    if (e.ok() && e.latency_ms <= kBudgetMs) {
      best = std::max(best, e.accuracy);
      ++feasible;
    } else if (e.ok()) {
      ++over;
      CHECK(s.fitness(e) == -std::numeric_limits<double>::infinity());
    }
  }
  REQUIRE(feasible > 0);
  CHECK(over > 0);  // the budget binds
  REQUIRE(s.best());
  CHECK(s.best()->accuracy == best);
  CHECK(s.best()->latency_ms <= kBudgetMs);
  // Later generations, bred from feasible parents, are more often feasible than random ones.
  auto feasible_in = [&](size_t begin) {
    size_t n = 0;
    for (size_t i = begin; i < begin + 16; ++i) n += all[i].ok() && all[i].latency_ms <= kBudgetMs;
    return n;
  };
  CHECK(feasible_in(all.size() - 16) >= feasible_in(0));
}

TEST_CASE("evolution with a cost predictor never asks for an over-budget policy",
          "[search][evolution]") {
  const auto space = make_space(nullptr);
  constexpr int64_t kMaxFlops = 400000;  // synthetic FLOPs are latency x 1e6
  auto config = kSmallEvolution;
  config["max_flops"] = kMaxFlops;
  int64_t predicted = 0;
  const search::CostPredictor cost = [&](const policies::Policy& p) {
    ++predicted;
    const auto e = synthetic(p);
    search::PredictedCost c;
    c.flops = e.flops;
    c.size_bytes = e.size_bytes;
    return c;
  };
  search::EvolutionStrategy s(search::EvolutionConfig::from_json(config, "strategy"), space, 3,
                              cost);
  const auto all = drive(s, 5);
  REQUIRE(all.size() >= 16);
  for (const auto& e : all) CHECK(e.flops <= kMaxFlops);
  CHECK(s.rejected_before_evaluation() > 0);  // the budget binds: the filter did the work
  CHECK(predicted == static_cast<int64_t>(all.size()) + s.rejected_before_evaluation());
  // Deterministic: the same seed and predictor give the same asks.
  search::EvolutionStrategy again(search::EvolutionConfig::from_json(config, "strategy"), space, 3,
                                  cost);
  CHECK(keys(drive(again, 5)) == keys(all));
  // Through the registry, as the controller builds it.
  auto built = search::make_strategy("evolution", config, space, 3, {}, cost);
  CHECK(keys(drive(*built, 5)) == keys(all));
}

TEST_CASE("nsga2 improves the front and beats random at the same cost", "[search][nsga2]") {
  const auto space = make_space(nullptr);
  const nlohmann::json config = {
      {"population", 20}, {"generations", 10}, {"objectives", {"accuracy", "latency"}}};
  for (uint64_t seed : {1, 2, 3}) {
    INFO("seed " << seed);
    search::Nsga2Strategy s(search::Nsga2Config::from_json(config, "strategy"), space, seed);
    CHECK(s.config().mutation_prob == Approx(1.0 / static_cast<double>(space.num_genes())));
    const auto evs = drive(s, 8);
    REQUIRE(evs.size() == 200);
    const std::vector<search::Evaluation> first(evs.begin(), evs.begin() + 20);
    CHECK(hv(s.population()) > hv(first));
    auto random = search::make_strategy("random", {{"evaluations", 200}}, space, seed);
    const auto baseline = drive(*random, 8);
    REQUIRE(baseline.size() == 200);
    CHECK(hv(evs) > hv(baseline));
  }
  // Failed candidates are dominated by everything: they never displace a working one.
  search::Nsga2Strategy s(search::Nsga2Config::from_json(kSmallNsga2, "strategy"), space, 4);
  drive(s, 5, [](const policies::Policy& p) {
    auto e = synthetic(p);
    if (std::hash<std::string>{}(p.key()) % 3 == 0) {
      e.error = "synthetic failure";
      e.accuracy = 1.0;
      e.latency_ms = 0.0;
    }
    return e;
  });
  for (const auto& e : s.population()) CHECK(e.ok());
}

TEST_CASE("a spread first generation covers more of the latency range than a random one",
          "[search][evolution][nsga2]") {
  const auto space = make_space(nullptr);
  CHECK_THROWS_WITH(search::make_strategy("evolution", {{"init", "latin"}}, space, 1),
                    Catch::Contains("init") && Catch::Contains("spread"));
  CHECK_THROWS_WITH(search::make_strategy("nsga2", {{"init", 3}}, space, 1),
                    Catch::Contains("init"));
  // Genomes drawn near level 0 compress least, near level 1 most.
  std::mt19937_64 rng(3);
  const auto low = synthetic(space.decode(space.sample_genome_near(0.0, 0.0, rng)));
  const auto high = synthetic(space.decode(space.sample_genome_near(1.0, 0.0, rng)));
  CHECK(low.latency_ms > high.latency_ms);
  CHECK(space.decode(space.sample_genome_near(0.0, 0.0, rng)).key() == policies::Policy{}.key());

  auto range = [&](const std::string& init, uint64_t seed) {
    nlohmann::json config = kSmallNsga2;
    config["generations"] = 1;
    config["population"] = 30;
    config["init"] = init;
    auto s = search::make_strategy("nsga2", config, space, seed);
    double lo = 1e9, hi = 0;
    for (const auto& e : drive(*s, 30)) {
      lo = std::min(lo, e.latency_ms);
      hi = std::max(hi, e.latency_ms);
    }
    return hi - lo;
  };
  for (uint64_t seed : {1, 2, 3}) {
    INFO("seed " << seed);
    CHECK(range("spread", seed) > 1.25 * range("random", seed));
  }
}

TEST_CASE("evolution without a budget keeps parents along the front and beats random",
          "[search][evolution]") {
  const auto space = make_space(nullptr);
  const nlohmann::json config = {{"population", 20},
                                 {"parents", 8},
                                 {"mutations", 10},
                                 {"crossovers", 10},
                                 {"iterations", 10}};
  for (uint64_t seed : {1, 2, 3}) {
    INFO("seed " << seed);
    search::EvolutionStrategy s(search::EvolutionConfig::from_json(config, "strategy"), space,
                                seed);
    const auto evs = drive(s, 8);
    REQUIRE(evs.size() == 200);
    // The parents are mutually non-dominated here (the first front holds more than 8 points),
    // and span both ends rather than only the most accurate networks.
    const auto parents = s.parents();
    REQUIRE(parents.size() == 8);
    std::vector<std::vector<double>> pts;
    for (const auto& p : parents)
      pts.push_back({-p.accuracy, p.latency_ms, static_cast<double>(p.size_bytes)});
    CHECK(search::non_dominated_sort(pts).fronts.size() == 1);
    double best = 0;
    for (const auto& e : evs) best = std::max(best, e.accuracy);
    REQUIRE(s.best());
    CHECK(s.best()->accuracy == best);
    auto random = search::make_strategy("random", {{"evaluations", 200}}, space, seed);
    CHECK(hv(evs) > hv(drive(*random, 8)));
  }
}

TEST_CASE("the run's budget steers every strategy while it searches", "[search][budget]") {
  const auto space = make_space(nullptr);
  search::Limits limits;  // a latency limit about a third of the way up the synthetic range
  limits.latency_ms = 0.35;
  const search::CostPredictor cost = [](const policies::Policy& p) {
    const auto e = synthetic(p);
    search::PredictedCost c;
    c.latency_ms = e.latency_ms;
    c.size_bytes = e.size_bytes;
    c.flops = e.flops;
    return c;
  };
  const auto share_within = [&](const std::vector<search::Evaluation>& evs) {
    return static_cast<double>(std::count_if(evs.begin(), evs.end(),
                                             [&](const auto& e) { return limits.met(e); })) /
           static_cast<double>(evs.size());
  };

  SECTION("random redraws proposals predicted over the budget") {
    auto free = search::make_strategy("random", {{"evaluations", 60}}, space, 5, {}, cost);
    const auto unconstrained = drive(*free, 6);
    auto s = search::make_strategy("random", {{"evaluations", 60}}, space, 5, {}, cost);
    s->set_limits(limits);
    const auto constrained = drive(*s, 6);
    REQUIRE(constrained.size() == 60);
    CHECK(share_within(unconstrained) < 0.5);
    CHECK(share_within(constrained) == 1.0);
    CHECK(dynamic_cast<search::RandomStrategy&>(*s).rejected_before_evaluation() > 0);
    // Without a cost predictor nothing can be known before evaluation: plain random.
    auto blind = search::make_strategy("random", {{"evaluations", 60}}, space, 5);
    blind->set_limits(limits);
    CHECK(keys(drive(*blind, 6)) == keys(unconstrained));
  }

  SECTION("nsga2 ranks by Deb's constrained domination") {
    const nlohmann::json config = {
        {"population", 20}, {"generations", 8}, {"objectives", {"accuracy", "latency"}}};
    search::Nsga2Strategy free(search::Nsga2Config::from_json(config, "strategy"), space, 2);
    drive(free, 10);
    search::Nsga2Strategy s(search::Nsga2Config::from_json(config, "strategy"), space, 2);
    s.set_limits(limits);
    const auto evs = drive(s, 10);
    // Survivors within the budget come first, those over it after, by excess.
    const auto pop = s.population();
    bool over_seen = false;
    double last_excess = 0;
    for (const auto& e : pop) {
      const double x = limits.excess(e);
      if (x > 0) {
        CHECK(x >= last_excess);
        over_seen = true, last_excess = x;
      } else {
        CHECK_FALSE(over_seen);
      }
    }
    CHECK(share_within(pop) > share_within(free.population()));
    CHECK(share_within(pop) == 1.0);  // enough candidates meet the budget to fill it
    // Accuracy within the budget improves on what the first generation found there.
    const auto best_within = [&](auto begin, auto end) {
      double best = 0;
      for (auto it = begin; it != end; ++it)
        if (limits.met(*it)) best = std::max(best, it->accuracy);
      return best;
    };
    CHECK(best_within(evs.begin() + 20, evs.end()) > best_within(evs.begin(), evs.begin() + 20));
  }

  SECTION("evolution rejects by the run's budget, its accuracy drop included") {
    auto with_drop = limits;
    with_drop.accuracy_drop = 0.5;
    with_drop.baseline_accuracy = 0.9;  // accuracy floor 0.4
    search::EvolutionStrategy s(search::EvolutionConfig::from_json(kSmallEvolution, "strategy"),
                                space, 3, cost);
    s.set_limits(with_drop);
    const auto all = drive(s, 5);
    for (const auto& e : all) CHECK(e.latency_ms <= limits.latency_ms);  // rejected before
    CHECK(s.rejected_before_evaluation() > 0);
    for (const auto& p : s.parents()) CHECK(with_drop.met(p));
    search::Evaluation low = synthetic({});
    low.latency_ms = 0.1;
    low.accuracy = 0.3;  // fast enough, but below the accuracy floor
    CHECK(s.fitness(low) == -std::numeric_limits<double>::infinity());
    low.accuracy = 0.45;
    CHECK(s.fitness(low) == Approx(0.45));
  }
}

TEST_CASE("method lists become per-point genes, decoded where the method is used",
          "[search][space][methods]") {
  const nlohmann::json j = {{"keep", {0.5, 1.0}},
                            {"weight_bits", {32, 4}},
                            {"rank", {1.0, 0.5}},
                            {"criterion", {"l1", "fpgm", "l2"}},
                            {"scheme", {"symmetric", "pow2"}},
                            {"factorization", {"tucker2", "spatial"}}};
  const auto space = make_space(j);
  std::map<std::string, size_t> genes;
  for (size_t g = 0; g < space.num_genes(); ++g) {
    const auto name = space.gene_name(g);
    genes[name.substr(name.find('/') + 1)]++;
    if (space.gene_dim(g) == search::SearchSpace::Dim::kCriterion) {
      CHECK(space.choices(g) == 3);
      CHECK(space.gene_name_value(g, 1) == "fpgm");
    }
  }
  const auto dp = points();
  size_t factorizable_convs = 0;  // convs with a rank gene (not the one-channel input conv)
  for (size_t g = 0; g < space.num_genes(); ++g)
    for (const auto& l : dp.layers)
      if (space.gene_name(g) == l.name + "/rank" && l.op == "conv2d") ++factorizable_convs;
  CHECK(factorizable_convs > 0);
  CHECK(genes["criterion"] == dp.channels.size());
  CHECK(genes["scheme"] == dp.layers.size());
  CHECK(genes["factorization"] == factorizable_convs);
  CHECK(space.method_names(search::SearchSpace::Dim::kScheme) ==
        std::vector<std::string>{"pow2", "symmetric"});

  std::mt19937_64 rng(3);
  std::set<std::string> criteria, schemes, methods;
  for (int i = 0; i < 200; ++i) {
    const auto p = space.sample(rng);
    INFO(p.to_json().dump());
    CHECK_NOTHROW(policies::validate(p, net()));
    // Named only where used, and only when not the global (default) method.
    for (const auto& [id, c] : p.criteria) {
      CHECK(p.keep.count(id) == 1);
      CHECK(c != "l1");
      criteria.insert(c);
    }
    for (const auto& [layer, s] : p.schemes) {
      CHECK(p.weight_bits.at(layer) == 4);
      CHECK(s == "pow2");
      schemes.insert(s);
    }
    for (const auto& [layer, f] : p.factorizations) {
      CHECK(p.rank.count(layer) == 1);
      CHECK(f == "spatial");
      methods.insert(f);
    }
    if (i < 20) CHECK_NOTHROW(policies::apply(net(), p));  // and they compress
  }
  CHECK(criteria == std::set<std::string>{"fpgm", "l2"});
  CHECK(schemes.size() == 1);
  CHECK(methods.size() == 1);
  // The uncompressed genome names no method; uniform baselines use the first listed.
  CHECK(space.decode(space.identity_genome()).key() == policies::Policy{}.key());

  // One listed method is every policy's global one, not a gene.
  auto one = j;
  one["criterion"] = {"fpgm"};
  const auto fixed = make_space(one);
  for (size_t g = 0; g < fixed.num_genes(); ++g)
    CHECK(fixed.gene_dim(g) != search::SearchSpace::Dim::kCriterion);
  const auto p = fixed.sample(rng);
  CHECK(p.criterion == "fpgm");
  CHECK(p.criteria.empty());
  CHECK(fixed.uniform(0.5, 32).criterion == "fpgm");

  // A per-layer override narrows a point's list.
  auto narrowed = j;
  narrowed["overrides"] = {{dp.layers[0].name, {{"scheme", {"symmetric"}}}}};
  const auto n = make_space(narrowed);
  for (size_t g = 0; g < n.num_genes(); ++g) CHECK(n.gene_name(g) != dp.layers[0].name + "/scheme");

  // Unknown methods and thinet among others are config errors.
  auto bad = j;
  bad["criterion"] = {"l1", "thinet"};
  CHECK_THROWS_WITH(make_space(bad), Catch::Contains("thinet"));
  bad["criterion"] = {"l3"};
  CHECK_THROWS_WITH(make_space(bad), Catch::Contains("space.criterion has 'l3'"));
  bad = j;
  bad["factorization"] = {"tucker2", "tucker2"};
  CHECK_THROWS_WITH(make_space(bad), Catch::Contains("twice"));
}

TEST_CASE("the policy encoder one-hot encodes the method genes", "[search][space][methods]") {
  const auto space = make_space({{"keep", {0.5, 1.0}},
                                 {"weight_bits", {32, 4}},
                                 {"criterion", {"l1", "fpgm"}},
                                 {"scheme", {"symmetric", "pow2"}}});
  const evaluators::PolicyEncoder plain(points());
  const evaluators::PolicyEncoder enc(points(), search::method_choices(space));
  const auto dp = points();
  CHECK(enc.size() == plain.size() + 2 * dp.channels.size() + 2 * dp.layers.size());
  CHECK(enc.feature_names().size() == enc.size());
  policies::Policy p;
  p.keep[dp.channels[0].id] = 0.5;
  p.criteria[dp.channels[0].id] = "fpgm";
  p.weight_bits[dp.layers[1].name] = 4;
  p.schemes[dp.layers[1].name] = "pow2";
  const auto f = enc.encode(p);
  const auto names = enc.feature_names();
  const auto at = [&](const std::string& n) {
    return f[static_cast<size_t>(std::find(names.begin(), names.end(), n) - names.begin())];
  };
  CHECK(at(dp.channels[0].id + "/criterion=fpgm") == 1.0f);
  CHECK(at(dp.channels[0].id + "/criterion=l1") == 0.0f);
  CHECK(at(dp.channels[1].id + "/criterion=l1") == 1.0f);  // the global criterion
  CHECK(at(dp.layers[1].name + "/scheme=pow2") == 1.0f);
  CHECK(at(dp.layers[0].name + "/scheme=symmetric") == 1.0f);
  // The features before the method ones are the plain encoder's.
  const auto base = plain.encode(p);
  CHECK(std::vector<float>(f.begin(), f.begin() + static_cast<long>(base.size())) == base);
}

TEST_CASE("space.float16 says what 16 weight bits mean", "[search][space][bf16]") {
  const auto space = make_space({{"weight_bits", {32, 16}}, {"float16", "bf16"}});
  std::mt19937_64 rng(5);
  bool sixteen = false;
  for (int i = 0; i < 20; ++i) {
    const auto p = space.sample(rng);
    CHECK(p.quantization.float16 == "bf16");
    for (const auto& [layer, bits] : p.weight_bits) sixteen = sixteen || bits == 16;
  }
  CHECK(sixteen);
  CHECK(space.reach().bf16);
  CHECK_FALSE(make_space(nullptr).reach().bf16);
  CHECK_THROWS_WITH(make_space({{"float16", "fp8"}}), Catch::Contains("space.float16 is 'fp8'"));
}
