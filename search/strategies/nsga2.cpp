#include "search/strategies/nsga2.h"

#include <algorithm>
#include <limits>

#include "core/json.h"

namespace tightfit::search {

Nsga2Config Nsga2Config::from_json(const nlohmann::json& j, const std::string& where) {
  const auto c = read_section<Nsga2Config>(j, where);
  check_init(c.init, where);
  if (c.population < 2) throw ConfigError(where + ".population must be >= 2");
  if (c.generations < 1) throw ConfigError(where + ".generations must be >= 1");
  if (!(c.crossover_prob >= 0.0 && c.crossover_prob <= 1.0))
    throw ConfigError(where + ".crossover_prob must be in [0, 1]");
  if (!(c.mutation_prob >= 0.0 && c.mutation_prob <= 1.0))
    throw ConfigError(where + ".mutation_prob must be in [0, 1] (0 = 1 / number of genes)");
  if (c.max_attempts < 1) throw ConfigError(where + ".max_attempts must be >= 1");
  if (c.objectives.empty())
    throw ConfigError(where + ".objectives needs at least one of: " + join(kNsga2Objectives));
  for (size_t i = 0; i < c.objectives.size(); ++i) {
    const auto& o = c.objectives[i];
    if (std::find(kNsga2Objectives.begin(), kNsga2Objectives.end(), o) == kNsga2Objectives.end())
      throw ConfigError(where + ".objectives has '" + o +
                        "'; valid objectives: " + join(kNsga2Objectives));
    if (std::find(c.objectives.begin(), c.objectives.begin() + i, o) != c.objectives.begin() + i)
      throw ConfigError(where + ".objectives lists '" + o + "' twice");
  }
  return c;
}

Nsga2Strategy::Nsga2Strategy(Nsga2Config config, const SearchSpace& space, uint64_t seed)
    : config_(std::move(config)), space_(space), rng_(seed), proposals_(space) {
  if (config_.mutation_prob == 0)
    config_.mutation_prob = 1.0 / static_cast<double>(space_.num_genes());
}

std::vector<double> Nsga2Strategy::objectives(const Evaluation& e) const {
  std::vector<double> v;
  for (const auto& o : config_.objectives) {
    if (o == "accuracy") v.push_back(-e.accuracy);
    if (o == "latency") v.push_back(e.latency_ms);
    if (o == "size") v.push_back(static_cast<double>(e.size_bytes));
    if (o == "flops") v.push_back(static_cast<double>(e.flops));
  }
  return v;
}

std::vector<Evaluation> Nsga2Strategy::population() const {
  std::vector<Evaluation> out;
  for (const auto& c : population_) out.push_back(c.result);
  return out;
}

size_t Nsga2Strategy::tournament() {
  std::uniform_int_distribution<size_t> pick(0, population_.size() - 1);
  const size_t a = pick(rng_);
  const size_t b = pick(rng_);
  if (rank_[a] != rank_[b]) return rank_[a] < rank_[b] ? a : b;
  if (crowding_[a] != crowding_[b]) return crowding_[a] > crowding_[b] ? a : b;
  return std::min(a, b);
}

void Nsga2Strategy::next_generation() {
  std::vector<Candidate> children;
  const auto want = static_cast<size_t>(config_.population);
  if (!population_.empty()) {
    std::bernoulli_distribution cross(config_.crossover_prob);
    for (int64_t t = 0; t < config_.population * config_.max_attempts && children.size() < want;
         ++t) {
      const Genome& first = population_[tournament()].genome;
      const Genome& second = population_[tournament()].genome;
      const Genome child = cross(rng_) ? uniform_crossover(first, second, rng_) : first;
      proposals_.offer(mutate(space_, child, config_.mutation_prob, rng_), children);
    }
  }
  // The first generation is drawn by `init`; whatever variation could not fill later is random.
  if (population_.empty() && config_.init == "spread")
    proposals_.add_spread(want - children.size(), config_.max_attempts, rng_, children);
  if (children.size() < want)
    proposals_.add_random(want - children.size(), config_.max_attempts, rng_, children);
  generation_.reset(std::move(children));
  ++generations_made_;
}

std::vector<policies::Policy> Nsga2Strategy::ask(size_t n) {
  if (generation_.complete()) {
    if (generations_made_ >= config_.generations) return {};
    next_generation();
  }
  return generation_.ask(n);
}

void Nsga2Strategy::tell(const std::vector<Evaluation>& results) {
  generation_.tell(results);
  if (!generation_.complete()) return;

  // Environmental selection over parents + children by Deb's constrained domination: the
  // candidates within the run's budget first, by non-dominated sorting and crowding; then those
  // over it, the smaller excess first; failed ones only fill what is left.
  std::vector<Candidate> pool = population_;
  for (const auto& c : generation_.members()) pool.push_back(c);
  std::vector<size_t> feasible, infeasible, failed;
  std::vector<double> excess(pool.size());
  std::vector<std::vector<double>> points;
  for (size_t i = 0; i < pool.size(); ++i) {
    excess[i] = limits_.excess(pool[i].result);
    if (!pool[i].result.ok()) {
      failed.push_back(i);
    } else if (excess[i] > 0) {
      infeasible.push_back(i);
    } else {
      feasible.push_back(i);
      points.push_back(objectives(pool[i].result));
    }
  }
  std::stable_sort(infeasible.begin(), infeasible.end(),
                   [&](size_t a, size_t b) { return excess[a] < excess[b]; });
  const size_t n = std::min(pool.size(), static_cast<size_t>(config_.population));
  std::vector<Candidate> survivors;
  if (!points.empty())
    for (size_t s : nsga2_select(points, std::min(n, points.size())))
      survivors.push_back(pool[feasible[s]]);
  const size_t within = survivors.size();
  for (size_t i = 0; i < infeasible.size() && survivors.size() < n; ++i)
    survivors.push_back(pool[infeasible[i]]);
  const size_t over = survivors.size() - within;
  for (size_t i = 0; i < failed.size() && survivors.size() < n; ++i)
    survivors.push_back(pool[failed[i]]);
  population_ = std::move(survivors);

  // Rank and crowding for the tournaments of the next generation: survivors within budget by
  // their fronts; each one over it a rank of its own after those, in order of excess; failed
  // ones last.
  std::vector<std::vector<double>> kept;
  for (size_t i = 0; i < within; ++i) kept.push_back(objectives(population_[i].result));
  const auto ranking = kept.empty() ? CrowdedRanking{} : crowded_ranking(kept);
  const size_t fronts =
      kept.empty() ? 0 : *std::max_element(ranking.rank.begin(), ranking.rank.end()) + 1;
  rank_.assign(population_.size(), std::numeric_limits<size_t>::max());
  crowding_.assign(population_.size(), 0.0);
  for (size_t i = 0; i < within; ++i) {
    rank_[i] = ranking.rank[i];
    crowding_[i] = ranking.crowding[i];
  }
  for (size_t k = 0; k < over; ++k) rank_[within + k] = fronts + k;
}

}  // namespace tightfit::search
