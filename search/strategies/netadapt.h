#pragma once
// `netadapt`: NetAdapt's progressive channel pruning (Yang et al., ECCV 2018). Starting from the
// uncompressed network, every step lowers a latency target by a schedule and makes one proposal
// per channel group: the least pruning of that group alone, on top of the current policy, that
// meets the target by the latency predictor (the lookup table). The proposals' short-term
// accuracy is evaluated and the best one becomes the current policy for the next step.
//
// Only channel-keep genes are adapted; bits, rank and sparsity genes stay at their first
// (uncompressed) choice. The strategy is deterministic: the seed is not used.

#include <cstdint>
#include <string>
#include <vector>

#include "search/strategies/genetic.h"
#include "search/strategy.h"

namespace tightfit::search {

struct NetAdaptConfig {
  int64_t steps = 10;            ///< steps at most (one chosen policy each)
  double reduction = 0.1;        ///< step target = previous chosen latency x (1 - reduction)
  double reduction_decay = 1.0;  ///< the reduction is multiplied by this after every step
  /// Stop once the chosen latency is at or below this, in ms; the last target is clamped to it
  /// so the final step lands on the budget rather than past it. 0 = no final target.
  double final_latency_ms = 0;

  template <typename Fields>
  void fields(Fields& f) {
    f("steps", steps);
    f("reduction", reduction);
    f("reduction_decay", reduction_decay);
    f("final_latency_ms", final_latency_ms);
  }
  static NetAdaptConfig from_json(const nlohmann::json& j, const std::string& where);
};

/// One completed step: the proposal that won it.
struct NetAdaptStep {
  double target_ms = 0;  ///< the step's latency target
  Genome genome;
  policies::Policy policy;
  double latency_ms = 0;  ///< predicted latency of `policy`, <= target_ms
  double accuracy = 0;    ///< as told
  size_t gene = 0;        ///< the keep gene this step pruned further
};

class NetAdaptStrategy : public Strategy {
 public:
  /// A space without channel-keep genes is a ConfigError; `predictor` must be callable.
  NetAdaptStrategy(NetAdaptConfig config, const SearchSpace& space, LatencyPredictor predictor);
  std::string name() const override { return "netadapt"; }
  /// The current step's proposals not yet asked, up to `n`; a new step starts once every
  /// proposal of the last one was told. Empty when done.
  std::vector<policies::Policy> ask(size_t n) override;
  void tell(const std::vector<Evaluation>& results) override;
  /// The run's latency limit becomes the final latency when the config sets none.
  void set_limits(const Limits& limits) override;

  const NetAdaptConfig& config() const { return config_; }
  /// Predicted latency of the uncompressed start policy, ms.
  double start_latency_ms() const { return start_latency_ms_; }
  /// Latency target of the step in progress (or the last one), ms.
  double target_ms() const { return target_ms_; }
  /// The keep gene of each proposal of the step in progress, in ask order.
  const std::vector<size_t>& proposal_genes() const { return proposal_genes_; }
  /// The winner of every completed step, in order.
  const std::vector<NetAdaptStep>& history() const { return history_; }
  bool done() const { return done_; }
  /// Why the search stopped ("steps", "final_latency", "unreachable", "all_failed"); empty
  /// while it runs.
  const std::string& stop_reason() const { return stop_reason_; }

 private:
  void start_step();
  void finish_step();
  void stop(const std::string& reason);

  NetAdaptConfig config_;
  const SearchSpace& space_;
  LatencyPredictor predictor_;
  std::vector<size_t> keep_genes_;
  Genome current_;
  double current_latency_ms_ = 0;
  double start_latency_ms_ = 0;
  double reduction_ = 0;  ///< this step's reduction (decayed)
  double target_ms_ = 0;
  Generation step_;                     ///< the proposals of the step in progress
  std::vector<size_t> proposal_genes_;  ///< gene of each member of step_
  std::vector<double> proposal_latency_ms_;
  std::vector<NetAdaptStep> history_;
  bool in_step_ = false;
  bool done_ = false;
  std::string stop_reason_;
};

}  // namespace tightfit::search
