#pragma once
// Genome operators and bookkeeping shared by the genetic strategies (evolution, nsga2): per-gene
// mutation, uniform crossover, and a generation that is handed out through ask() in slices and
// filled in through tell() in the same order.

#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "search/strategy.h"

namespace tightfit::search {

/// Re-draws each gene uniformly from its choices with probability `prob` (the new value may
/// equal the old one, as in MetaPruning).
Genome mutate(const SearchSpace& space, const Genome& genome, double prob, std::mt19937_64& rng);

/// Each gene from `a` or `b` with probability 1/2.
Genome uniform_crossover(const Genome& a, const Genome& b, std::mt19937_64& rng);

/// How a genetic strategy draws its first generation: "random" (every gene uniform) or
/// "spread" (genomes near compression levels spread over [0, 1]).
inline const std::vector<std::string> kInitNames = {"random", "spread"};
/// A ConfigError naming `where` unless `init` is one of kInitNames.
void check_init(const std::string& init, const std::string& where);
/// Standard deviation of a gene around its level in a "spread" first generation, as a fraction
/// of the gene's range.
constexpr double kSpreadNoise = 0.2;

/// One proposed candidate and, once told, its result.
struct Candidate {
  Genome genome;
  policies::Policy policy;
  Evaluation result;
};

/// The candidates of one generation: ask() hands them out in order, tell() stores results.
class Generation {
 public:
  void reset(std::vector<Candidate> members);
  /// The next up to `n` policies not yet asked.
  std::vector<policies::Policy> ask(size_t n);
  /// Results of the last ask(), in its order; a size mismatch is a caller bug.
  void tell(const std::vector<Evaluation>& results);
  /// Every member asked and told (true for an empty generation).
  bool complete() const { return told_ == members_.size(); }
  bool empty() const { return members_.empty(); }
  const std::vector<Candidate>& members() const { return members_; }

 private:
  std::vector<Candidate> members_;
  size_t asked_ = 0;
  size_t told_ = 0;
};

/// Remembers every policy proposed so far (by Policy::key, so genomes that decode alike count
/// as one) and turns fresh genomes into candidates.
class Proposals {
 public:
  explicit Proposals(const SearchSpace& space) : space_(space) {}
  /// Only policies `admit` accepts are proposed from now on (e.g. those within a budget).
  void set_filter(std::function<bool(const policies::Policy&)> admit) { admit_ = std::move(admit); }
  /// Policies the filter turned away so far.
  int64_t filtered() const { return filtered_; }
  /// Adds the candidate of `genome` to `out` when its policy was never proposed and the filter
  /// admits it; returns whether.
  bool offer(const Genome& genome, std::vector<Candidate>& out);
  /// Adds up to `n` fresh random candidates to `out`, trying at most `attempts` draws each.
  void add_random(size_t n, int64_t attempts, std::mt19937_64& rng, std::vector<Candidate>& out);
  /// Adds up to `n` fresh candidates drawn near compression levels stratified over [0, 1]
  /// (candidate i at a level drawn in [i/n, (i+1)/n)), see SearchSpace::sample_genome_near.
  void add_spread(size_t n, int64_t attempts, std::mt19937_64& rng, std::vector<Candidate>& out);

 private:
  const SearchSpace& space_;
  std::set<std::string> seen_;
  std::function<bool(const policies::Policy&)> admit_;
  int64_t filtered_ = 0;
};

}  // namespace tightfit::search
