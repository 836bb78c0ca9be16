#pragma once
// `random`: policies drawn uniformly and independently from the space, without repeats. The
// baseline every other strategy has to beat (and MetaPruning's initial population). Under a
// budget, with a cost predictor, a draw whose predicted size, FLOPs or latency is over it is
// repaired: every gene moved the same share of the way to its most compressing choice, the
// least share that fits found by bisection (a draw that cannot fit even fully compressed is
// proposed as it came). Uniform draws cluster at medium cost, so under a tight budget rejection
// would discard most of them; repair keeps each draw's shape and lands it near the budget,
// where the most accurate networks under it are.

#include <random>
#include <set>

#include "search/strategy.h"

namespace tightfit::search {

struct RandomConfig {
  int64_t evaluations = 40;  ///< policies proposed in all

  template <typename Fields>
  void fields(Fields& f) {
    f("evaluations", evaluations);
  }

  static RandomConfig from_json(const nlohmann::json& j, const std::string& where);
};

class RandomStrategy : public Strategy {
 public:
  RandomStrategy(RandomConfig config, const SearchSpace& space, uint64_t seed,
                 CostPredictor cost = {});
  std::string name() const override { return "random"; }
  std::vector<policies::Policy> ask(size_t n) override;
  void tell(const std::vector<Evaluation>&) override {}
  /// Draws whose predicted cost was over the budget (and were repaired).
  int64_t rejected_before_evaluation() const { return rejected_; }
  /// Bisection steps of a repair (a repair costs at most this many predictions plus two).
  static constexpr int kRepairSteps = 6;

 private:
  policies::Policy repair(const Genome& genome);

  RandomConfig config_;
  const SearchSpace& space_;
  std::mt19937_64 rng_;
  std::set<std::string> seen_;
  int64_t proposed_ = 0;
  CostPredictor cost_;
  int64_t rejected_ = 0;
};

}  // namespace tightfit::search
