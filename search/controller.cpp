// The search controller: ask -> pool -> observers -> tell. Everything it drives lives elsewhere:
// the session (network, data, target, evaluator, cost model), the run folder and its journal,
// the evaluation cache, the pool that evaluates candidates, the observers that record them, the
// front's finalization and the output files. What remains here is the order of a run: checks
// before expensive work, the uncompressed baseline, the uniform baselines, the strategy's loop,
// then the front.

#include "search/controller.h"

#include <cstdio>

#include "core/errors.h"
#include "core/timing.h"
#include "evaluators/evaluator.h"
#include "search/batch.h"
#include "search/budget.h"
#include "search/outputs.h"
#include "search/run_folder.h"
#include "search/screen.h"
#include "search/strategy.h"

namespace tightfit::search {

namespace {

/// Uniform baselines, what the search has to beat: each baseline keep fraction at full precision
/// and with 8-bit weights, 8-bit weights unpruned, and int8 deployment (8-bit weights and inputs)
/// when activations are searched too. They stay inside the space: pruned ones only where it
/// prunes, 8-bit ones only where it has 8 bits.
std::vector<policies::Policy> uniform_baselines(const SearchConfig& config,
                                                const SearchSpace& space) {
  const auto has = [](const std::vector<int>& v, int x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  const bool has_8 = has(config.space.weight_bits, 8);
  bool prunes = false;
  for (size_t g = 0; g < space.num_genes(); ++g)
    prunes = prunes || space.gene_dim(g) == SearchSpace::Dim::kKeep;
  std::vector<policies::Policy> out;
  for (double keep : config.baseline_keep) {
    if (!prunes && keep < 1.0) continue;
    out.push_back(space.uniform(keep, 32));
    if (has_8) out.push_back(space.uniform(keep, 8));
  }
  if (has_8) out.push_back(space.uniform(1.0, 8));
  if (has_8 && has(config.space.act_bits, 8)) out.push_back(space.uniform(1.0, 8, 8));
  return out;
}

/// The strategy's config checked before the data is loaded and the cost model built (a missing
/// table takes minutes to profile), with a stand-in for the latency predictor every model but
/// `measure` gives.
void check_strategy_config(const Session& s) {
  const LatencyPredictor stand_in = [](const policies::Policy&) { return 0.0; };
  make_strategy(s.config.strategy, s.config.strategy_config, s.space, s.config.seed,
                s.config.cost.latency != "measure" ? stand_in : LatencyPredictor());
}

/// What every result of the run carries: machine, versions, target, protocol, cost model, seed,
/// config, network, evaluator, strategy.
nlohmann::json run_context(const Session& s, const Strategy& strategy) {
  nlohmann::json c = targets::machine_context();
  c["tightfit"] = TIGHTFIT_VERSION;
  c["target"] = s.target->name();
  c["precision"] = s.config.measure.precision;
  c["threads"] = s.config.measure.threads;
  c["measure"] = s.config.measure.to_json();
  c["latency_cost"] = s.cost->name();
  if (const auto described = s.cost->describe(); !described.empty()) c["latency_table"] = described;
  if (const auto accuracy = s.cost->accuracy(); !accuracy.is_null())
    c["latency_model_accuracy"] = accuracy;
  c["seed"] = s.config.seed;
  c["config_hash"] = s.config.hash;
  c["config"] = s.config.raw;
  c["model"] = s.model_name();
  c["evaluator"] = {{"name", s.evaluator->name()}, {"settings", s.evaluator->settings()}};
  c["strategy"] = strategy.name();
  c["channel_multiple"] = s.channel_multiple;
  if (!s.channel_multiple_source.is_null()) c["channel_multiple_auto"] = s.channel_multiple_source;
  c["decision_points"] = {{"channels", s.points.channels.size()},
                          {"layers", s.points.layers.size()}};
  c["started"] = now_utc();
  return c;
}

}  // namespace

SearchResult run_search(const SearchConfig& config, const RunOptions& opts) {
  const auto t_start = Clock::now();
  const Say say = [&](const std::string& msg) {
    if (opts.progress) std::fprintf(stderr, "[search] %s\n", msg.c_str());
  };
  // Everything a user can get wrong is checked before any expensive work starts.
  RunFolder folder(opts, config);
  evaluators::check_evaluator_config(config.evaluator, config.evaluator_config);
  Session session(config);
  session.open_target();
  check_strategy_config(session);
  session.load_data();
  session.open_evaluator();
  RunStats stats;
  session.resolve_channel_multiple(say);
  CandidateScorer scorer(session, stats);
  session.open_cost_model(say);
  auto strategy = make_strategy(config.strategy, config.strategy_config, session.space, config.seed,
                                scorer.latency_predictor(), scorer.cost_predictor());
  std::unique_ptr<Screener> screener;
  if (!config.screen.is_null())
    screener =
        std::make_unique<Screener>(ScreenConfig::from_json(config.screen, "screen"), session.space);
  EvalCache cache(session, stats, say);
  check_budget_reachable(session, scorer, config.budget);  // absolute limits: before any work
  if (config.model_path.empty())
    say("model '" + config.model_zoo + "' has random weights: accuracies mean little");
  JournalObserver journal(folder.open_journal(), stats);
  if (!folder.replay().empty())
    say("resuming: " + std::to_string(folder.replay().size()) + " evaluations in the journal");

  SearchResult result;
  result.context = run_context(session, *strategy);
  ScreenHook screen;
  if (screener)
    screen = [&](const Evaluation& e) { return screener->screen(e, result.evaluations); };
  const auto pool = make_thread_pool(scorer, config.parallel_evaluations, screen);
  BatchEvaluator batches(folder.replay(), cache, *pool, stats, result.replayed);
  ArchiveObserver archive(result);
  const auto uniforms = uniform_baselines(config, session.space);
  ProgressObserver progress(config, result, archive, static_cast<int64_t>(uniforms.size()), t_start,
                            say);
  for (Observer* o : {static_cast<Observer*>(&cache), static_cast<Observer*>(&journal),
                      static_cast<Observer*>(&archive)})
    batches.add_observer(*o);
  if (opts.progress) batches.add_observer(progress);

  stats = RunStats();  // the budget check's costing above is set-up
  stats.setup = seconds_since(t_start);
  const auto t_loop = Clock::now();
  say("baseline: evaluating the uncompressed network");
  result.baseline = batches.evaluate({policies::Policy{}}, -1, "baseline").front();
  if (!result.baseline.ok())
    throw InputError("the uncompressed network cannot be evaluated: " + result.baseline.error);
  // Relative limits become absolute on the baseline's own figures (same target, same cost).
  result.budget = config.budget.resolved(result.baseline.latency_ms, result.baseline.size_bytes,
                                         result.baseline.flops);
  if (result.budget.relative()) {
    say("budget " + result.budget.to_json().dump() + " (relative limits on the uncompressed " +
        "network's figures)");
    const RunStats kept = stats;  // the check's costing is set-up, not search work
    check_budget_reachable(session, scorer, result.budget);
    stats = kept;
  }
  strategy->set_limits(limits_of(result.budget, result.baseline.accuracy));
  int64_t next_index = 0;
  for (const auto& p : uniforms) batches.evaluate({p}, next_index++, "uniform");
  for (;;) {
    std::vector<policies::Policy> asked;
    {
      ScopedSeconds timed(stats.strategy);
      asked = strategy->ask(static_cast<size_t>(config.ask_batch));
    }
    if (asked.empty()) break;
    const auto told = batches.evaluate(asked, next_index, "search");
    next_index += static_cast<int64_t>(asked.size());
    ScopedSeconds timed(stats.strategy);
    strategy->tell(told);
  }
  stats.loop = seconds_since(t_loop);

  const auto t_finish = Clock::now();
  finalize_front(session, result, opts.out_dir, say);
  if (screener) result.context["screen"] = screener->summary();
  stats.finish = seconds_since(t_finish);  // the output files below take milliseconds
  result.stats = stats;
  result.context["run_stats"] = stats.to_json();
  result.context["finished"] = now_utc();
  result.context["evaluations"] = result.evaluations.size();
  result.context["replayed"] = result.replayed;
  result.context["hypervolume"] = relative_hypervolume(result.evaluations, result.baseline);
  result.context["failed"] = std::count_if(result.evaluations.begin(), result.evaluations.end(),
                                           [](const Evaluation& e) { return !e.ok(); });
  write_outputs(config, result, opts.out_dir);
  return result;
}

}  // namespace tightfit::search
