#include "search/strategies/random.h"

#include <cmath>

#include "core/json.h"

namespace tightfit::search {

RandomConfig RandomConfig::from_json(const nlohmann::json& j, const std::string& where) {
  const auto c = read_section<RandomConfig>(j, where);
  if (c.evaluations < 1) throw ConfigError(where + ".evaluations must be >= 1");
  return c;
}

RandomStrategy::RandomStrategy(RandomConfig config, const SearchSpace& space, uint64_t seed,
                               CostPredictor cost)
    : config_(config), space_(space), rng_(seed), cost_(std::move(cost)) {}

namespace {

/// `genome` with every gene moved the share `t` of the way to its most compressing choice
/// (rounded up): t = 0 leaves it, t = 1 compresses everything as far as the space allows.
Genome compress_toward(const SearchSpace& space, const Genome& genome, double t) {
  Genome out = genome;
  for (size_t g = 0; g < out.size(); ++g) {
    const int last = space.choices(g) - 1;
    out[g] += static_cast<int>(std::ceil(t * (last - out[g]) - 1e-9));
  }
  return out;
}

}  // namespace

policies::Policy RandomStrategy::repair(const Genome& genome) {
  // Pruning, bits and rank only lower the costs, so the fit is monotone in t: bisect for the
  // least compression that fits.
  const auto fits = [&](const Genome& g) { return admits(limits_, cost_(space_.decode(g))); };
  if (fits(genome)) return space_.decode(genome);
  ++rejected_;
  const Genome most = compress_toward(space_, genome, 1.0);
  if (!fits(most)) return space_.decode(genome);  // nothing fits: the draw as it came
  double lo = 0.0, hi = 1.0;
  Genome best = most;
  for (int step = 0; step < kRepairSteps; ++step) {
    const double mid = (lo + hi) / 2;
    const Genome g = compress_toward(space_, genome, mid);
    if (fits(g)) {
      hi = mid;
      best = g;
    } else {
      lo = mid;
    }
  }
  return space_.decode(best);
}

std::vector<policies::Policy> RandomStrategy::ask(size_t n) {
  // A small space can run out of new policies: give up on a draw after this many repeats.
  constexpr int kMaxRedraws = 100;
  const bool check_cost = cost_ && limits_.any();
  std::vector<policies::Policy> out;
  while (out.size() < n && proposed_ < config_.evaluations) {
    policies::Policy p;
    bool fresh = false;
    for (int tries = 0; tries < kMaxRedraws && !fresh; ++tries) {
      const Genome g = space_.sample_genome(rng_);
      p = check_cost ? repair(g) : space_.decode(g);
      fresh = seen_.insert(p.key()).second;
    }
    if (!fresh) break;  // space exhausted
    out.push_back(std::move(p));
    ++proposed_;
  }
  return out;
}

}  // namespace tightfit::search
