#include "search/fidelity.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <limits>
#include <random>
#include <sstream>

#include "core/json.h"
#include "core/timing.h"
#include "evaluators/evaluator.h"
#include "evaluators/predictor.h"
#include "policies/compress.h"
#include "search/screen.h"
#include "search/session.h"
#include "search/strategies/genetic.h"
#include "targets/target.h"

namespace tightfit::search {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Reference fine-tune: long enough that the damage a policy did has mostly healed.
constexpr int64_t kReferenceSteps = 300;
constexpr int64_t kReferenceValidationImages = 5000;
constexpr int kReferenceThreads = 2;

/// Rank agreement over the candidates both `a` and `b` scored.
evaluators::RankAgreement agreement(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> x, y;
  for (size_t i = 0; i < a.size(); ++i)
    if (!std::isnan(a[i]) && !std::isnan(b[i])) {
      x.push_back(a[i]);
      y.push_back(b[i]);
    }
  if (x.size() < 2) return {};
  return evaluators::rank_agreement(x, y);
}

/// Out-of-fold predictions of `reference` from the policies' encodings (NaN where the reference
/// failed): each fold predicted by a predictor fitted on the others. Returns ms per candidate.
double predictor_scores(const nlohmann::json& config, const SearchSpace& space,
                        const std::vector<policies::Policy>& policies,
                        const std::vector<double>& reference, std::vector<double>& out) {
  auto pc = evaluators::PredictorConfig::from_json(config, "predictor");
  const int64_t folds = std::max<int64_t>(2, pc.folds);
  pc.folds = 0;  // each fold's model is fitted without a nested cross-validation
  const evaluators::PolicyEncoder encoder(space.points(), method_choices(space));
  std::vector<size_t> ok;
  for (size_t i = 0; i < reference.size(); ++i)
    if (!std::isnan(reference[i])) ok.push_back(i);
  out.assign(policies.size(), kNaN);
  const auto t0 = Clock::now();
  for (int64_t f = 0; f < folds; ++f) {
    std::vector<std::vector<float>> train_x, test_x;
    std::vector<double> train_y;
    std::vector<size_t> test;
    for (size_t k = 0; k < ok.size(); ++k) {
      const size_t i = ok[k];
      if (static_cast<int64_t>(k) % folds == f) {
        test.push_back(i);
        test_x.push_back(encoder.encode(policies[i]));
      } else {
        train_x.push_back(encoder.encode(policies[i]));
        train_y.push_back(reference[i]);
      }
    }
    if (test.empty()) continue;
    // Too few reference scores to fit this fold: its candidates stay unscored (failed).
    if (static_cast<int64_t>(train_x.size()) < pc.min_samples) continue;
    evaluators::AccuracyPredictor predictor(pc);
    predictor.fit(train_x, train_y);
    const auto predicted = predictor.predict(test_x);
    for (size_t k = 0; k < test.size(); ++k) out[test[k]] = predicted[k];
  }
  return ok.empty() ? 0.0 : 1e3 * seconds_since(t0) / static_cast<double>(ok.size());
}

std::string number(double v, int digits) {
  if (std::isnan(v)) return "n/a";
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
}
}  // namespace

evaluators::FinetuneConfig default_reference_finetune() {
  evaluators::FinetuneConfig c;
  c.steps = kReferenceSteps;
  c.distill = true;
  c.score.bn_batches = 0;
  c.score.validation_images = kReferenceValidationImages;
  c.score.threads = kReferenceThreads;
  return c;
}

namespace {

/// The proxies that score candidates themselves (nullptr for `predictor`, which is fitted to the
/// reference afterwards), built on the session's data.
std::vector<std::unique_ptr<evaluators::AccuracyEvaluator>> open_proxies(
    const std::vector<ProxySpec>& specs, const Session& session) {
  std::vector<std::unique_ptr<evaluators::AccuracyEvaluator>> proxies(specs.size());
  for (size_t p = 0; p < specs.size(); ++p)
    if (specs[p].name != "predictor")
      proxies[p] = evaluators::make_evaluator(specs[p].name, specs[p].config, session.data);
  return proxies;
}

/// Candidates near compression levels spread over [0, 1] (a uniform draw per gene would give
/// networks of nearly one size, whose order is mostly noise).
std::vector<policies::Policy> draw_candidates(const Session& session, int64_t samples) {
  std::mt19937_64 rng(session.config.seed);
  Proposals proposals(session.space);
  std::vector<Candidate> drawn;
  constexpr size_t kTriesPerLevel = 20;
  proposals.add_spread(static_cast<size_t>(samples), kTriesPerLevel, rng, drawn);
  std::vector<policies::Policy> out;
  for (const auto& c : drawn) out.push_back(c.policy);
  return out;
}

void print_progress(const FidelityResult& r, size_t i,
                    const std::vector<std::unique_ptr<evaluators::AccuracyEvaluator>>& proxies) {
  std::fprintf(stderr, "[fidelity] %zu/%zu  reference %s", i + 1, r.policies.size(),
               number(r.reference[i], 4).c_str());
  for (size_t p = 0; p < proxies.size(); ++p)
    if (proxies[p])
      std::fprintf(stderr, "  %s %s", r.proxies[p].name.c_str(),
                   number(r.proxies[p].accuracy[i], 4).c_str());
  std::fprintf(stderr, "\n");
}

}  // namespace

FidelityResult measure_fidelity(const SearchConfig& config, const FidelityOptions& opts) {
  if (opts.samples < 2)
    throw ConfigError("fidelity needs at least 2 samples to rank (--samples " +
                      std::to_string(opts.samples) + ")");
  std::vector<ProxySpec> specs = opts.proxies;
  if (specs.empty()) specs.push_back({config.evaluator, config.evaluator_config});
  Session session(config);
  // Every proxy's config is checked before anything is scored.
  for (const auto& s : specs)
    if (s.name == "predictor") evaluators::PredictorConfig::from_json(s.config, "predictor");
  session.load_data();
  session.resolve_channel_multiple([&](const std::string& msg) {
    if (opts.progress) std::fprintf(stderr, "[fidelity] %s\n", msg.c_str());
  });
  const auto proxies = open_proxies(specs, session);
  evaluators::FinetuneEvaluator reference(opts.reference, session.data);

  FidelityResult r;
  r.policies = draw_candidates(session, opts.samples);
  const size_t n = r.policies.size();
  r.reference.assign(n, kNaN);
  r.proxies.resize(specs.size());
  std::vector<double> proxy_ms(specs.size(), 0.0);
  double reference_ms = 0;
  for (size_t p = 0; p < specs.size(); ++p) {
    r.proxies[p].name = specs[p].name;
    r.proxies[p].settings = proxies[p] ? proxies[p]->settings() : specs[p].config;
    r.proxies[p].accuracy.assign(n, kNaN);
  }
  for (size_t i = 0; i < n; ++i) {
    policies::CompressedNetwork candidate;
    try {
      candidate = session.apply(r.policies[i]);
    } catch (const std::exception& e) {
      if (opts.progress)
        std::fprintf(stderr, "[fidelity] %zu/%zu: cannot apply: %s\n", i + 1, n, e.what());
      continue;
    }
    for (size_t p = 0; p < specs.size(); ++p) {
      if (!proxies[p]) continue;
      const auto a = proxies[p]->evaluate(candidate, session.net);
      proxy_ms[p] += a.seconds * 1e3;
      if (a.ok()) r.proxies[p].accuracy[i] = a.accuracy;
    }
    const auto ref = reference.evaluate(candidate, session.net);
    reference_ms += ref.seconds * 1e3;
    if (ref.ok()) r.reference[i] = ref.accuracy;
    if (opts.progress) print_progress(r, i, proxies);
  }
  for (size_t p = 0; p < specs.size(); ++p) {
    auto& pf = r.proxies[p];
    if (!proxies[p])
      pf.ms_per_candidate =
          predictor_scores(specs[p].config, session.space, r.policies, r.reference, pf.accuracy);
    else
      pf.ms_per_candidate = n ? proxy_ms[p] / static_cast<double>(n) : 0.0;
    for (double a : pf.accuracy) pf.failed += std::isnan(a) ? 1 : 0;
    pf.agreement = agreement(pf.accuracy, r.reference);
  }
  r.reference_ms_per_candidate = n ? reference_ms / static_cast<double>(n) : 0.0;
  r.reference_settings = opts.reference.to_json();
  r.context = targets::machine_context();
  r.context["seed"] = config.seed;
  r.context["config_hash"] = config.hash;
  r.context["model"] = session.model_name();
  r.context["samples"] = n;
  return r;
}

nlohmann::json FidelityResult::to_json() const {
  nlohmann::json j;
  auto nullable = [](double v) {
    return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
  };
  j["reference"] = {{"name", "finetune"},
                    {"settings", reference_settings},
                    {"ms_per_candidate", reference_ms_per_candidate}};
  j["proxies"] = nlohmann::json::object();
  for (const auto& p : proxies) {
    j["proxies"][p.name] = {{"ms_per_candidate", p.ms_per_candidate},
                            {"kendall_tau", nullable(p.agreement.kendall_tau)},
                            {"spearman_rho", nullable(p.agreement.spearman_rho)},
                            {"n", p.agreement.n},
                            {"failed", p.failed},
                            {"settings", p.settings}};
  }
  j["samples"] = nlohmann::json::array();
  for (size_t i = 0; i < policies.size(); ++i) {
    nlohmann::json s = {{"policy", policies[i].to_json()}, {"reference", nullable(reference[i])}};
    for (const auto& p : proxies) s[p.name] = nullable(p.accuracy[i]);
    j["samples"].push_back(s);
  }
  j["context"] = context;
  return j;
}

std::string FidelityResult::table() const {
  std::ostringstream os;
  os << std::left << std::setw(14) << "proxy" << std::right << std::setw(14) << "ms/candidate"
     << std::setw(13) << "kendall_tau" << std::setw(14) << "spearman_rho" << std::setw(8)
     << "failed"
     << "\n";
  for (const auto& p : proxies)
    os << std::left << std::setw(14) << p.name << std::right << std::setw(14)
       << number(p.ms_per_candidate, 1) << std::setw(13) << number(p.agreement.kendall_tau, 3)
       << std::setw(14) << number(p.agreement.spearman_rho, 3) << std::setw(8) << p.failed << "\n";
  os << std::left << std::setw(14) << "(reference)" << std::right << std::setw(14)
     << number(reference_ms_per_candidate, 1) << "  fine-tune of " << reference_settings["steps"]
     << " steps, " << policies.size() << " candidates\n";
  return os.str();
}

}  // namespace tightfit::search
