#pragma once
// `random`: policies drawn uniformly and independently from the space, without repeats. The
// baseline every other strategy has to beat (and MetaPruning's initial population).

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
  RandomStrategy(RandomConfig config, const SearchSpace& space, uint64_t seed);
  std::string name() const override { return "random"; }
  std::vector<policies::Policy> ask(size_t n) override;
  void tell(const std::vector<Evaluation>&) override {}

 private:
  RandomConfig config_;
  const SearchSpace& space_;
  std::mt19937_64 rng_;
  std::set<std::string> seen_;
  int64_t proposed_ = 0;
};

}  // namespace tightfit::search
