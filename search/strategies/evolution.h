#pragma once
// `evolution`: MetaPruning's evolutionary search (Liu et al., ICCV 2019). The first generation
// is drawn by `init` (below); every later one is made of mutations (each gene re-drawn with a small
// probability) and uniform crossovers of parents drawn from the top-k candidates seen so far,
// topped up with random samples when those run dry. Fitness is the accuracy; budgets are enforced
// by rejection: a candidate over a budget (or one that failed) has fitness -inf and never becomes a
// parent. MetaPruning checks its FLOPs budget before evaluating; here budgets are checked on what
// tell() reports, since latency is only known once measured, and with a cost predictor also
// before: proposals predicted over a budget are never asked for. The budgets are the config's
// own max_* and the run's budget (set_limits; its accuracy drop counts in the fitness).
//
// Without any budget, "the most accurate" would breed only the largest networks. The top-k are
// then chosen by non-dominated rank over (accuracy, latency, size), ties broken by crowding
// distance, so the parents spread along the whole front. The first generation is drawn near
// compression levels spread over [0, 1] ("init": "spread") unless "init" is "random".

#include <optional>
#include <random>

#include "search/strategies/genetic.h"

namespace tightfit::search {

struct EvolutionConfig {
  int64_t population = 50;                ///< candidates per generation
  int64_t parents = 10;                   ///< top-k by fitness, over every generation so far
  int64_t mutations = 25;                 ///< mutated children per generation
  double mutation_prob = 0.1;             ///< probability that a gene is re-drawn
  int64_t crossovers = 25;                ///< uniform-crossover children per generation
  int64_t iterations = 20;                ///< generations evaluated, the first one included
  std::optional<double> max_latency_ms;   ///< budget on Evaluation::latency_ms (none if absent)
  std::optional<int64_t> max_size_bytes;  ///< budget on Evaluation::size_bytes
  std::optional<int64_t> max_flops;       ///< budget on Evaluation::flops
  int64_t max_attempts = 20;    ///< draws per wanted child before giving up on a fresh policy
  std::string init = "spread";  ///< first generation: kInitNames ("random" is MetaPruning's)

  template <typename Fields>
  void fields(Fields& f) {
    f("population", population);
    f("parents", parents);
    f("mutations", mutations);
    f("mutation_prob", mutation_prob);
    f("crossovers", crossovers);
    f("iterations", iterations);
    f("max_latency_ms", max_latency_ms);
    f("max_size_bytes", max_size_bytes);
    f("max_flops", max_flops);
    f("max_attempts", max_attempts);
    f("init", init);
  }
  /// Whether the config sets a budget of its own.
  bool constrained() const { return max_latency_ms || max_size_bytes || max_flops; }

  static EvolutionConfig from_json(const nlohmann::json& j, const std::string& where);
};

class EvolutionStrategy : public Strategy {
 public:
  /// With `cost`, proposals over a size or FLOPs budget (and over a latency budget when `cost`
  /// predicts latency) are rejected before they are asked for, never evaluated.
  EvolutionStrategy(EvolutionConfig config, const SearchSpace& space, uint64_t seed,
                    CostPredictor cost = {});
  std::string name() const override { return "evolution"; }
  std::vector<policies::Policy> ask(size_t n) override;
  void tell(const std::vector<Evaluation>& results) override;

  const EvolutionConfig& config() const { return config_; }
  /// Accuracy when `e` succeeded and meets every budget (its own and the run's), else -infinity.
  double fitness(const Evaluation& e) const;
  /// The current parents (top-k), best first; all within budget. Without a budget, "best" is
  /// by Pareto rank, then crowding.
  std::vector<Evaluation> parents() const;
  /// The best candidate within budget so far, if any.
  std::optional<Evaluation> best() const;
  /// Proposals rejected before evaluation, by the predicted cost.
  int64_t rejected_before_evaluation() const { return proposals_.filtered(); }

 private:
  void next_generation();
  /// The config's own budgets as limits.
  Limits own_limits() const;
  /// Whether any budget is set, the config's or the run's; without one, parents are ranked by
  /// Pareto front, not accuracy.
  bool constrained() const { return config_.constrained() || limits_.any(); }

  EvolutionConfig config_;
  const SearchSpace& space_;
  std::mt19937_64 rng_;
  Proposals proposals_;
  Generation generation_;
  std::vector<Candidate> top_;  ///< best first
  int64_t generations_made_ = 0;
};

}  // namespace tightfit::search
