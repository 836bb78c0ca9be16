#pragma once
// Strategies propose policies and learn from their results through ask/tell; they never run
// anything themselves, so the same strategy works with threads, MPI ranks or a remote target.
// Call order: set_limits(budget) -> ask(n) -> the controller evaluates -> tell(results) -> ask(n)
// ... until ask() returns an empty list.
//
// The run's budget steers every strategy while it searches, not only the final choice: random
// search redraws proposals whose predicted size, FLOPs or latency is over it; evolution rejects
// them before evaluation and gives over-budget results no fitness; NSGA-II ranks by Deb's
// constrained domination (within budget beats over it; among those over it, the smaller excess
// wins); NetAdapt stops at the latency limit when its config names no final latency.

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "search/evaluation.h"
#include "search/space.h"

namespace tightfit::search {

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string name() const = 0;
  /// Up to `n` new policies; empty when the strategy is done.
  virtual std::vector<policies::Policy> ask(size_t n) = 0;
  /// Results of the policies of the last ask(), in the same order.
  virtual void tell(const std::vector<Evaluation>& results) = 0;
  /// The run's budget (relative limits resolved on the baseline), before the first ask().
  virtual void set_limits(const Limits& limits) { limits_ = limits; }
  const Limits& limits() const { return limits_; }

 protected:
  Limits limits_;  ///< none until set_limits()
};

/// Predicted latency of a policy on the target, in ms (lower is better), e.g. from the latency
/// lookup table. Strategies that plan against a latency model (netadapt) get it from the
/// controller, which owns the model.
using LatencyPredictor = std::function<double(const policies::Policy&)>;

/// What a policy costs, known before it is evaluated: size and FLOPs counted on the compressed
/// network, latency predicted by the lookup table (negative when the run measures latency).
struct PredictedCost {
  double latency_ms = -1;
  int64_t size_bytes = 0;
  int64_t flops = 0;
};
/// Strategies with budgets (random, evolution) use it to reject over-budget proposals before
/// they are evaluated, as MetaPruning does; the controller supplies it.
using CostPredictor = std::function<PredictedCost(const policies::Policy&)>;
/// Whether a cost predicted before evaluation meets the cost limits of `limits` (a latency that
/// is not predicted, < 0, meets any).
bool admits(const Limits& limits, const PredictedCost& cost);

/// Builds strategy `name` from its config section (unknown keys rejected). Throws ConfigError
/// listing the known names on a miss, or when the strategy needs a latency predictor and
/// `predictor` is empty.
std::unique_ptr<Strategy> make_strategy(const std::string& name, const nlohmann::json& config,
                                        const SearchSpace& space, uint64_t seed,
                                        LatencyPredictor predictor = {}, CostPredictor cost = {});
std::vector<std::string> strategy_names();

}  // namespace tightfit::search
