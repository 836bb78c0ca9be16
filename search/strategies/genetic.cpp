#include "search/strategies/genetic.h"

#include <algorithm>

#include "core/errors.h"
#include "core/json.h"

namespace tightfit::search {

Genome mutate(const SearchSpace& space, const Genome& genome, double prob, std::mt19937_64& rng) {
  std::bernoulli_distribution redraw(prob);
  Genome out = genome;
  for (size_t g = 0; g < out.size(); ++g)
    if (redraw(rng)) out[g] = std::uniform_int_distribution<int>(0, space.choices(g) - 1)(rng);
  return out;
}

Genome uniform_crossover(const Genome& a, const Genome& b, std::mt19937_64& rng) {
  TIGHTFIT_CHECK(a.size() == b.size(),
                 "crossover of genomes of " << a.size() << " and " << b.size() << " genes");
  std::bernoulli_distribution from_b(0.5);
  Genome out = a;
  for (size_t g = 0; g < out.size(); ++g)
    if (from_b(rng)) out[g] = b[g];
  return out;
}

void Generation::reset(std::vector<Candidate> members) {
  members_ = std::move(members);
  asked_ = told_ = 0;
}

std::vector<policies::Policy> Generation::ask(size_t n) {
  TIGHTFIT_CHECK(told_ == asked_, "ask() before the results of the previous ask() were told");
  std::vector<policies::Policy> out;
  for (; asked_ < members_.size() && out.size() < n; ++asked_)
    out.push_back(members_[asked_].policy);
  return out;
}

void Generation::tell(const std::vector<Evaluation>& results) {
  TIGHTFIT_CHECK(told_ + results.size() == asked_,
                 "tell() got " << results.size() << " results for " << asked_ - told_ << " asked");
  for (const auto& r : results) members_[told_++].result = r;
}

bool Proposals::offer(const Genome& genome, std::vector<Candidate>& out) {
  policies::Policy p = space_.decode(genome);
  if (!seen_.insert(p.key()).second) return false;
  if (admit_ && !admit_(p)) {
    ++filtered_;
    return false;
  }
  out.push_back({genome, std::move(p), Evaluation{}});
  return true;
}

void Proposals::add_random(size_t n, int64_t attempts, std::mt19937_64& rng,
                           std::vector<Candidate>& out) {
  for (size_t added = 0; added < n; ++added) {
    bool fresh = false;
    for (int64_t t = 0; t < attempts && !fresh; ++t) fresh = offer(space_.sample_genome(rng), out);
    if (!fresh) return;  // the space is (nearly) exhausted
  }
}

void Proposals::add_spread(size_t n, int64_t attempts, std::mt19937_64& rng,
                           std::vector<Candidate>& out) {
  std::uniform_real_distribution<double> within(0.0, 1.0);
  for (size_t i = 0; i < n; ++i) {
    bool fresh = false;
    for (int64_t t = 0; t < attempts && !fresh; ++t) {
      const double level = (static_cast<double>(i) + within(rng)) / static_cast<double>(n);
      fresh = offer(space_.sample_genome_near(level, kSpreadNoise, rng), out);
    }
  }
}

void check_init(const std::string& init, const std::string& where) {
  if (std::find(kInitNames.begin(), kInitNames.end(), init) == kInitNames.end())
    throw ConfigError(where + ".init is '" + init + "'; valid values: " + join(kInitNames));
}

}  // namespace tightfit::search
