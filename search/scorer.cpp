#include "search/scorer.h"

#include "core/errors.h"
#include "core/timing.h"
#include "evaluators/cost.h"

namespace tightfit::search {

namespace {
/// Parameters of networks compressed ahead for the budget filter kept at most (mostly
/// proposals the filter rejected go first).
constexpr int64_t kPrecompressedBytes = int64_t{256} << 20;
}  // namespace

void NetworkCache::put(const std::string& key, policies::CompressedNetwork net, int64_t bytes) {
  if (bytes > max_bytes_ || entries_.count(key)) return;
  while (bytes_ + bytes > max_bytes_) drop(entries_.find(order_.front()));
  order_.push_back(key);
  entries_.emplace(key, Entry{std::move(net), bytes, std::prev(order_.end())});
  bytes_ += bytes;
}

std::optional<policies::CompressedNetwork> NetworkCache::take(const std::string& key) {
  const auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  auto net = std::move(it->second.net);
  drop(it);
  return net;
}

void NetworkCache::drop(std::map<std::string, Entry>::iterator it) {
  bytes_ -= it->second.bytes;
  order_.erase(it->second.age);
  entries_.erase(it);
}

CandidateScorer::CandidateScorer(const Session& session, RunStats& stats)
    : session_(session), stats_(stats), precompressed_(kPrecompressedBytes) {}

void CandidateScorer::cost(const policies::Policy& policy, Evaluation& e,
                           policies::CompressedNetwork& candidate) {
  e.policy = policy;
  e.latency_source = session_.cost->source();
  try {
    if (auto kept = precompressed_.take(policy.key())) {
      candidate = std::move(*kept);
      ++stats_.reused_compressions;
    } else {
      ScopedSeconds timed(stats_.apply);
      candidate = session_.apply(policy);
    }
    {
      ScopedSeconds timed(stats_.count_cost);
      const auto counted = evaluators::count_cost(candidate);
      e.size_bytes = counted.size_bytes;
      e.params = counted.params;
      e.flops = counted.flops;
    }
    ScopedSeconds timed(stats_.latency);
    const auto latency = session_.cost->predict({&candidate}).front();
    if (!latency.ok()) throw std::runtime_error(latency.error);
    e.latency_ms = latency.ms;
    e.latency_spread_ms = latency.spread_ms;
  } catch (const std::exception& ex) {
    e.error = ex.what();  // a failed candidate is data; the search goes on
  }
}

void CandidateScorer::accuracy(Evaluation& e, const policies::CompressedNetwork& candidate) const {
  if (!e.ok()) return;
  const auto acc = session_.evaluator->evaluate(candidate, session_.net);
  if (!acc.ok()) {
    e.error = "accuracy: " + acc.error;
    return;
  }
  e.accuracy = acc.accuracy;
  e.loss = acc.loss;
}

PredictedCost CandidateScorer::predict(const policies::Policy& policy) {
  auto c = session_.apply(policy);
  const auto counted = evaluators::count_cost(c);
  PredictedCost out;
  out.size_bytes = counted.size_bytes;
  out.flops = counted.flops;
  if (!session_.cost->times_on_target()) {
    const auto latency = session_.cost->predict({&c}).front();
    // A strategy cannot plan around a candidate it cannot cost: the run stops with the reason.
    if (!latency.ok()) throw InputError(latency.error);
    out.latency_ms = latency.ms;
  }
  precompressed_.put(policy.key(), std::move(c), counted.params * int64_t{sizeof(float)});
  return out;
}

CostPredictor CandidateScorer::cost_predictor() {
  return [this](const policies::Policy& p) { return predict(p); };
}

LatencyPredictor CandidateScorer::latency_predictor() {
  if (session_.cost->times_on_target()) return {};
  return [this](const policies::Policy& p) { return predict(p).latency_ms; };
}

}  // namespace tightfit::search
