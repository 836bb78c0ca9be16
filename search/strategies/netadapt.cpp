// NetAdapt, one step at a time:
//   1. target = latency of the current policy x (1 - reduction), clamped to final_latency_ms;
//   2. for every channel group (keep gene), in gene order, the smallest step up its choices
//      (choices run from least to most pruning) that alone brings the predicted latency to the
//      target is a proposal; a group that cannot reach it proposes nothing;
//   3. the proposals are asked (in as many batches as the controller likes) and told;
//   4. the best accuracy among the successful ones becomes the current policy (ties: lower
//      predicted latency, then the lower gene), and the reduction decays.
// NetAdapt fine-tunes each proposal briefly and the final policy long; here the short-term
// accuracy is whatever the controller's evaluator reports, and long fine-tuning is left to the
// user's pick from the front.

#include "search/strategies/netadapt.h"

#include <algorithm>
#include <utility>

#include "core/errors.h"
#include "core/json.h"

namespace tightfit::search {

NetAdaptConfig NetAdaptConfig::from_json(const nlohmann::json& j, const std::string& where) {
  const auto c = read_section<NetAdaptConfig>(j, where);
  if (c.steps < 1) throw ConfigError(where + ".steps must be >= 1");
  if (!(c.reduction > 0.0 && c.reduction < 1.0))
    throw ConfigError(where + ".reduction must be in (0, 1), e.g. 0.1 for 10% per step");
  // A decay above 1 would grow the reduction past 1 and make targets negative.
  if (!(c.reduction_decay > 0.0 && c.reduction_decay <= 1.0))
    throw ConfigError(where + ".reduction_decay must be in (0, 1] (1 = constant reduction)");
  if (!(c.final_latency_ms >= 0.0))
    throw ConfigError(where + ".final_latency_ms must be >= 0 (0 = no final target)");
  return c;
}

NetAdaptStrategy::NetAdaptStrategy(NetAdaptConfig config, const SearchSpace& space,
                                   LatencyPredictor predictor)
    : config_(config),
      space_(space),
      predictor_(std::move(predictor)),
      current_(space.identity_genome()),
      reduction_(config.reduction) {
  TIGHTFIT_CHECK(predictor_, "netadapt built without a latency predictor");
  for (size_t g = 0; g < space_.num_genes(); ++g)
    if (space_.gene_dim(g) == SearchSpace::Dim::kKeep) keep_genes_.push_back(g);
  if (keep_genes_.empty())
    throw ConfigError(
        "strategy netadapt prunes channels, but the space has no channel-keep choices; use "
        "space kind \"pruning\" or \"joint\" with at least two \"keep\" values");
  start_latency_ms_ = current_latency_ms_ = predictor_(space_.decode(current_));
  target_ms_ = current_latency_ms_;
}

void NetAdaptStrategy::set_limits(const Limits& limits) {
  Strategy::set_limits(limits);
  if (config_.final_latency_ms <= 0 && limits.latency_ms > 0)
    config_.final_latency_ms = limits.latency_ms;
}

void NetAdaptStrategy::stop(const std::string& reason) {
  done_ = true;
  stop_reason_ = reason;
}

void NetAdaptStrategy::start_step() {
  if (static_cast<int64_t>(history_.size()) >= config_.steps) return stop("steps");
  const double final_ms = config_.final_latency_ms;
  if (final_ms > 0 && current_latency_ms_ <= final_ms) return stop("final_latency");
  target_ms_ = current_latency_ms_ * (1.0 - reduction_);
  if (final_ms > 0) target_ms_ = std::max(target_ms_, final_ms);

  std::vector<Candidate> members;
  proposal_genes_.clear();
  proposal_latency_ms_.clear();
  for (size_t g : keep_genes_) {
    Genome genome = current_;
    for (int c = current_[g] + 1; c < space_.choices(g); ++c) {
      genome[g] = c;
      policies::Policy policy = space_.decode(genome);
      const double latency_ms = predictor_(policy);
      if (latency_ms <= target_ms_) {
        members.push_back({genome, std::move(policy), Evaluation{}});
        proposal_genes_.push_back(g);
        proposal_latency_ms_.push_back(latency_ms);
        break;
      }
    }
  }
  if (members.empty()) return stop("unreachable");
  step_.reset(std::move(members));
  in_step_ = true;
}

void NetAdaptStrategy::finish_step() {
  in_step_ = false;
  const auto& members = step_.members();
  size_t best = members.size();
  for (size_t i = 0; i < members.size(); ++i) {
    const Evaluation& r = members[i].result;
    if (!r.ok()) continue;
    // Proposals are in gene order, so strict comparisons keep the lower gene on a full tie.
    if (best == members.size() || r.accuracy > members[best].result.accuracy ||
        (r.accuracy == members[best].result.accuracy &&
         proposal_latency_ms_[i] < proposal_latency_ms_[best]))
      best = i;
  }
  if (best == members.size()) return stop("all_failed");
  current_ = members[best].genome;
  current_latency_ms_ = proposal_latency_ms_[best];
  history_.push_back({target_ms_, current_, members[best].policy, current_latency_ms_,
                      members[best].result.accuracy, proposal_genes_[best]});
  reduction_ *= config_.reduction_decay;
}

std::vector<policies::Policy> NetAdaptStrategy::ask(size_t n) {
  if (!in_step_ && !done_) start_step();
  if (done_) return {};
  return step_.ask(n);
}

void NetAdaptStrategy::tell(const std::vector<Evaluation>& results) {
  TIGHTFIT_CHECK(in_step_ || results.empty(), "netadapt told results it did not ask for");
  if (!in_step_) return;
  step_.tell(results);
  if (step_.complete()) finish_step();
}

}  // namespace tightfit::search
