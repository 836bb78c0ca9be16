#include "search/strategies/evolution.h"

#include <algorithm>
#include <limits>

#include "core/json.h"
#include "search/moo.h"

namespace tightfit::search {

EvolutionConfig EvolutionConfig::from_json(const nlohmann::json& j, const std::string& where) {
  const auto c = read_section<EvolutionConfig>(j, where);
  check_init(c.init, where);
  if (c.population < 1) throw ConfigError(where + ".population must be >= 1");
  if (c.parents < 1) throw ConfigError(where + ".parents must be >= 1");
  if (c.mutations < 0 || c.crossovers < 0)
    throw ConfigError(where + ".mutations and .crossovers must be >= 0");
  if (c.mutations + c.crossovers > c.population)
    throw ConfigError(where + ": mutations + crossovers (" +
                      std::to_string(c.mutations + c.crossovers) + ") exceed the population (" +
                      std::to_string(c.population) + "); lower them or raise population");
  if (!(c.mutation_prob > 0.0 && c.mutation_prob <= 1.0))
    throw ConfigError(where + ".mutation_prob must be in (0, 1]");
  if (c.iterations < 1) throw ConfigError(where + ".iterations must be >= 1");
  if (c.max_attempts < 1) throw ConfigError(where + ".max_attempts must be >= 1");
  if (c.max_latency_ms && !(*c.max_latency_ms > 0))
    throw ConfigError(where + ".max_latency_ms must be > 0");
  if ((c.max_size_bytes && *c.max_size_bytes <= 0) || (c.max_flops && *c.max_flops <= 0))
    throw ConfigError(where + ".max_size_bytes and .max_flops must be > 0");
  return c;
}

EvolutionStrategy::EvolutionStrategy(EvolutionConfig config, const SearchSpace& space,
                                     uint64_t seed, CostPredictor cost)
    : config_(config), space_(space), rng_(seed), proposals_(space) {
  if (!cost) return;
  proposals_.set_filter([this, cost = std::move(cost)](const policies::Policy& p) {
    if (!constrained()) return true;  // costing a policy compresses it: only when it matters
    const PredictedCost c = cost(p);
    return admits(own_limits(), c) && admits(limits_, c);
  });
}

Limits EvolutionStrategy::own_limits() const {
  Limits l;
  l.latency_ms = config_.max_latency_ms.value_or(0);
  l.size_bytes = config_.max_size_bytes.value_or(0);
  l.flops = config_.max_flops.value_or(0);
  return l;
}

double EvolutionStrategy::fitness(const Evaluation& e) const {
  if (!own_limits().met(e) || !limits_.met(e)) return -std::numeric_limits<double>::infinity();
  return e.accuracy;
}

std::vector<Evaluation> EvolutionStrategy::parents() const {
  std::vector<Evaluation> out;
  for (const auto& c : top_) out.push_back(c.result);
  return out;
}

std::optional<Evaluation> EvolutionStrategy::best() const {
  if (top_.empty()) return std::nullopt;
  // The most accurate candidate is always a parent: it is on the first front, at its edge.
  return std::max_element(top_.begin(), top_.end(),
                          [](const Candidate& a, const Candidate& b) {
                            return a.result.accuracy < b.result.accuracy;
                          })
      ->result;
}

void EvolutionStrategy::next_generation() {
  std::vector<Candidate> members;
  const auto population = static_cast<size_t>(config_.population);
  if (!top_.empty()) {
    std::uniform_int_distribution<size_t> pick(0, top_.size() - 1);
    const auto want_mutations = static_cast<size_t>(config_.mutations);
    for (int64_t t = 0;
         t < config_.mutations * config_.max_attempts && members.size() < want_mutations; ++t)
      proposals_.offer(mutate(space_, top_[pick(rng_)].genome, config_.mutation_prob, rng_),
                       members);
    const size_t want_total = members.size() + static_cast<size_t>(config_.crossovers);
    for (int64_t t = 0;
         t < config_.crossovers * config_.max_attempts && members.size() < want_total; ++t) {
      const auto& a = top_[pick(rng_)].genome;
      const auto& b = top_[pick(rng_)].genome;
      proposals_.offer(uniform_crossover(a, b, rng_), members);
    }
  }
  // The first generation is drawn by `init`; whatever mutation and crossover could not fill
  // later is random.
  if (members.size() < population) {
    const size_t missing = population - members.size();
    if (top_.empty() && config_.init == "spread")
      proposals_.add_spread(missing, config_.max_attempts, rng_, members);
    if (members.size() < population)
      proposals_.add_random(population - members.size(), config_.max_attempts, rng_, members);
  }
  generation_.reset(std::move(members));
  ++generations_made_;
}

std::vector<policies::Policy> EvolutionStrategy::ask(size_t n) {
  if (generation_.complete()) {
    if (generations_made_ >= config_.iterations) return {};
    next_generation();
  }
  return generation_.ask(n);
}

void EvolutionStrategy::tell(const std::vector<Evaluation>& results) {
  generation_.tell(results);
  if (!generation_.complete()) return;
  // Top-k over every generation so far: the old parents compete with the new members. The sort
  // is stable, so ties keep the earlier candidate first.
  std::vector<Candidate> pool = top_;
  for (const auto& c : generation_.members())
    if (fitness(c.result) > -std::numeric_limits<double>::infinity()) pool.push_back(c);
  const auto k = std::min(pool.size(), static_cast<size_t>(config_.parents));
  if (!constrained()) {
    top_.clear();
    std::vector<std::vector<double>> points;
    for (const auto& c : pool)
      points.push_back(
          {-c.result.accuracy, c.result.latency_ms, static_cast<double>(c.result.size_bytes)});
    if (!points.empty())
      for (size_t i : nsga2_select(points, k)) top_.push_back(pool[i]);
    return;
  }
  std::stable_sort(pool.begin(), pool.end(), [&](const Candidate& a, const Candidate& b) {
    return fitness(a.result) > fitness(b.result);
  });
  pool.resize(k);
  top_ = std::move(pool);
}

}  // namespace tightfit::search
