#pragma once
// `nsga2`: NSGA-II (Deb et al., 2002) over the genome of the space. The first generation is
// drawn near compression levels spread over [0, 1] ("init": "spread"; "random" draws every gene
// uniformly); each later one is `population` children, each from two binary-tournament winners
// (lower non-domination rank, then larger crowding distance) by uniform crossover (with
// probability crossover_prob, else a copy of the first) and per-gene mutation. Survivors are
// chosen by nsga2_select over parents + children. Objectives are minimized: -accuracy,
// latency_ms, size_bytes, flops, as configured. Under the run's budget (set_limits), selection
// and tournaments follow Deb's constrained domination: a candidate within the budget beats one
// over it, and of two over it the smaller excess (Limits::excess) wins. A failed evaluation is
// dominated by everything: it is ranked after every successful one and survives only to fill
// the population.

#include <random>

#include "search/moo.h"
#include "search/strategies/genetic.h"

namespace tightfit::search {

/// Objective names nsga2 understands.
inline const std::vector<std::string> kNsga2Objectives = {"accuracy", "latency", "size", "flops"};

struct Nsga2Config {
  int64_t population = 40;      ///< survivors, and children per generation
  int64_t generations = 10;     ///< generations evaluated, the first one included
  double crossover_prob = 0.9;  ///< probability that a child is a crossover (else a copy)
  double mutation_prob = 0;     ///< per-gene re-draw probability; 0 = 1 / number of genes
  std::vector<std::string> objectives = {"accuracy", "latency", "size"};  ///< kNsga2Objectives
  int64_t max_attempts = 20;    ///< draws per wanted child before giving up on a fresh policy
  std::string init = "spread";  ///< first generation: kInitNames

  template <typename Fields>
  void fields(Fields& f) {
    f("population", population);
    f("generations", generations);
    f("crossover_prob", crossover_prob);
    f("mutation_prob", mutation_prob);
    f("objectives", objectives);
    f("max_attempts", max_attempts);
    f("init", init);
  }
  static Nsga2Config from_json(const nlohmann::json& j, const std::string& where);
};

class Nsga2Strategy : public Strategy {
 public:
  Nsga2Strategy(Nsga2Config config, const SearchSpace& space, uint64_t seed);
  std::string name() const override { return "nsga2"; }
  std::vector<policies::Policy> ask(size_t n) override;
  void tell(const std::vector<Evaluation>& results) override;

  const Nsga2Config& config() const { return config_; }
  /// The objective vector of a successful evaluation (every entry minimized).
  std::vector<double> objectives(const Evaluation& e) const;
  /// The current survivors, in selection order (best first).
  std::vector<Evaluation> population() const;

 private:
  void next_generation();
  size_t tournament();

  Nsga2Config config_;
  const SearchSpace& space_;
  std::mt19937_64 rng_;
  Proposals proposals_;
  Generation generation_;
  std::vector<Candidate> population_;
  std::vector<size_t> rank_;      ///< per survivor; failed ones rank after all others
  std::vector<double> crowding_;  ///< per survivor, within its front
  int64_t generations_made_ = 0;
};

}  // namespace tightfit::search
