#include "search/screen.h"

#include <cmath>

#include "core/json.h"

namespace tightfit::search {

ScreenConfig ScreenConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw ConfigError(where + " must be an object of predictor settings");
  const auto c = read_section<ScreenConfig>(j, where);
  c.predictor.check(where);
  if (!(c.margin >= 0)) throw ConfigError(where + ".margin must be >= 0");
  if (c.refit_every < 1) throw ConfigError(where + ".refit_every must be >= 1");
  return c;
}

nlohmann::json ScreenConfig::to_json() const { return write_section(*this); }

bool is_real_score(const Evaluation& e) { return e.scored() && e.kind != "baseline"; }

evaluators::MethodChoices method_choices(const SearchSpace& space) {
  return {space.method_names(SearchSpace::Dim::kCriterion),
          space.method_names(SearchSpace::Dim::kScheme),
          space.method_names(SearchSpace::Dim::kFactorization)};
}

Screener::Screener(ScreenConfig config, const SearchSpace& space)
    : config_(std::move(config)), encoder_(space.points(), method_choices(space)) {}

void Screener::refit(const std::vector<Evaluation>& history) {
  std::vector<const Evaluation*> real;
  for (const auto& e : history)
    if (is_real_score(e)) real.push_back(&e);
  const auto every = static_cast<size_t>(config_.refit_every);
  const size_t use = real.size() / every * every;
  if (use == fitted_on_ || static_cast<int64_t>(use) < config_.predictor.min_samples) return;
  std::vector<std::vector<float>> x;
  std::vector<double> y;
  for (size_t i = 0; i < use; ++i) {
    x.push_back(encoder_.encode(real[i]->policy));
    y.push_back(real[i]->accuracy);
  }
  predictor_ = std::make_unique<evaluators::AccuracyPredictor>(config_.predictor);
  last_fit_ = predictor_->fit(x, y);
  fitted_on_ = use;
  ++fits_;
}

std::optional<double> Screener::screen(const Evaluation& candidate,
                                       const std::vector<Evaluation>& history) {
  if (!candidate.ok()) return std::nullopt;
  refit(history);
  if (!predictor_) return std::nullopt;
  const double predicted = predictor_->predict({encoder_.encode(candidate.policy)}).front();
  const double error =
      std::isnan(last_fit_.holdout_rmse) ? last_fit_.target_std : last_fit_.holdout_rmse;
  const double optimistic = predicted + config_.margin * error;
  for (const auto& e : history)
    if (is_real_score(e) && e.latency_ms <= candidate.latency_ms &&
        e.size_bytes <= candidate.size_bytes && e.accuracy >= optimistic) {
      ++screened_;
      return predicted;
    }
  return std::nullopt;
}

nlohmann::json Screener::summary() const {
  nlohmann::json j = {{"fits", fits_},
                      {"screened", screened_},
                      {"fitted_on", fitted_on_},
                      {"settings", config_.to_json()}};
  if (fits_ > 0) j["last_fit"] = last_fit_.to_json();
  return j;
}

}  // namespace tightfit::search
