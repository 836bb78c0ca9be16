#include "search/strategies/random.h"

#include "core/json.h"

namespace tightfit::search {

RandomConfig RandomConfig::from_json(const nlohmann::json& j, const std::string& where) {
  const auto c = read_section<RandomConfig>(j, where);
  if (c.evaluations < 1) throw ConfigError(where + ".evaluations must be >= 1");
  return c;
}

RandomStrategy::RandomStrategy(RandomConfig config, const SearchSpace& space, uint64_t seed)
    : config_(config), space_(space), rng_(seed) {}

std::vector<policies::Policy> RandomStrategy::ask(size_t n) {
  // A small space can run out of new policies: give up on a draw after this many repeats.
  constexpr int kMaxRedraws = 100;
  std::vector<policies::Policy> out;
  while (out.size() < n && proposed_ < config_.evaluations) {
    policies::Policy p;
    bool fresh = false;
    for (int tries = 0; tries < kMaxRedraws && !fresh; ++tries) {
      p = space_.sample(rng_);
      fresh = seen_.insert(p.key()).second;
    }
    if (!fresh) break;  // space exhausted
    out.push_back(std::move(p));
    ++proposed_;
  }
  return out;
}

}  // namespace tightfit::search
