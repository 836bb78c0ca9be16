#include "search/controller.h"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <list>
#include <map>
#include <optional>
#include <random>
#include <sstream>

#include "datasets/fashion_mnist.h"
#include "evaluators/cost.h"
#include "evaluators/evaluator.h"
#include "evaluators/fidelity.h"
#include "evaluators/finetune.h"
#include "graph/json_util.h"
#include "graph/serialize.h"
#include "graph/timing.h"
#include "latency_models/lut.h"
#include "models/zoo.h"
#include "policies/compress.h"
#include "search/journal.h"
#include "search/moo.h"
#include "search/pareto.h"
#include "search/report.h"
#include "search/screen.h"
#include "search/strategy.h"
#include "targets/target.h"

namespace tightfit::search {

namespace {

/// The JSON pointers at which two configs differ (at most a few, for the message).
std::string config_difference(const nlohmann::json& before, const nlohmann::json& now) {
  std::vector<std::string> paths;
  for (const auto& op : nlohmann::json::diff(before, now)) {
    const std::string p = op.value("path", std::string("/"));
    if (std::find(paths.begin(), paths.end(), p) == paths.end()) paths.push_back(p);
  }
  constexpr size_t kShown = 5;
  std::string out;
  for (size_t i = 0; i < paths.size() && i < kShown; ++i) out += (i ? ", " : "") + paths[i];
  if (paths.size() > kShown) out += " and " + std::to_string(paths.size() - kShown) + " more";
  return out;
}

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  const auto tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) throw InputError("cannot write '" + path.string() + "'");
    out << text;
  }
  std::filesystem::rename(tmp, path);
}

nlohmann::json front_entry(const Evaluation& e) {
  nlohmann::json j = {{"index", e.index},
                      {"kind", e.kind},
                      {"policy", e.policy.to_json()},
                      {"accuracy", e.accuracy},
                      {"loss", e.loss},
                      {"latency_ms", e.latency_ms},
                      {"latency_spread_ms", e.latency_spread_ms},
                      {"size_bytes", e.size_bytes},
                      {"params", e.params},
                      {"flops", e.flops}};
  if (e.latency_source == "lut") {
    j["predicted_latency_ms"] = e.latency_ms;
    if (e.measured_latency_ms > 0) j["measured_latency_ms"] = e.measured_latency_ms;
  }
  if (e.finetuned_accuracy >= 0) j["finetuned_accuracy"] = e.finetuned_accuracy;
  return j;
}

std::string csv_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

/// Mean keep fraction over the policy's channel decisions (1 = nothing pruned).
double mean_keep(const policies::Policy& p, size_t decision_points) {
  if (decision_points == 0) return 1.0;
  double sum = static_cast<double>(decision_points - p.keep.size());
  for (const auto& [id, f] : p.keep) sum += f;
  return sum / static_cast<double>(decision_points);
}

}  // namespace

std::vector<size_t> pareto_front(const std::vector<Evaluation>& evaluations) {
  std::vector<size_t> ok;
  std::vector<std::vector<double>> points;
  for (size_t i = 0; i < evaluations.size(); ++i) {
    const auto& e = evaluations[i];
    if (!e.scored()) continue;  // predicted accuracies never count
    ok.push_back(i);
    points.push_back({-e.accuracy, e.latency_ms, static_cast<double>(e.size_bytes)});
  }
  std::vector<size_t> front;
  for (size_t k : non_dominated(points)) front.push_back(ok[k]);
  std::sort(front.begin(), front.end(), [&](size_t a, size_t b) {
    return evaluations[a].latency_ms < evaluations[b].latency_ms;
  });
  return front;
}

namespace {

/// True when `e` meets every limit of `b` (`baseline_accuracy` for the accuracy drop).
bool within_budget(const Evaluation& e, const Budget& b, double baseline_accuracy) {
  return e.ok() && (b.latency_ms <= 0 || e.latency_ms <= b.latency_ms) &&
         (b.size_bytes <= 0 || e.size_bytes <= b.size_bytes) &&
         (b.flops <= 0 || e.flops <= b.flops) &&
         (b.accuracy_drop <= 0 || baseline_accuracy - e.accuracy <= b.accuracy_drop);
}

/// How far `e` is from meeting `b`: the largest relative excess over any limit (0 when met).
double budget_excess(const Evaluation& e, const Budget& b, double baseline_accuracy) {
  double worst = 0;
  auto over = [&](double value, double limit) {
    if (limit > 0) worst = std::max(worst, (value - limit) / limit);
  };
  over(e.latency_ms, b.latency_ms);
  over(static_cast<double>(e.size_bytes), static_cast<double>(b.size_bytes));
  over(static_cast<double>(e.flops), static_cast<double>(b.flops));
  if (b.accuracy_drop > 0)
    worst = std::max(worst, (baseline_accuracy - e.accuracy - b.accuracy_drop) / b.accuracy_drop);
  return worst;
}

/// best.json: the most accurate candidate within the budget (ties: the faster), or, when none
/// is, the one closest to it with how far it is.
nlohmann::json best_under_budget(const std::vector<Evaluation>& evaluations, const Budget& b,
                                 double baseline_accuracy) {
  const Evaluation* best = nullptr;
  const Evaluation* closest = nullptr;
  double closest_excess = 0;
  for (const auto& e : evaluations) {
    if (!e.scored()) continue;
    if (within_budget(e, b, baseline_accuracy)) {
      if (!best || e.accuracy > best->accuracy ||
          (e.accuracy == best->accuracy && e.latency_ms < best->latency_ms))
        best = &e;
    } else {
      const double excess = budget_excess(e, b, baseline_accuracy);
      if (!closest || excess < closest_excess) closest = &e, closest_excess = excess;
    }
  }
  nlohmann::json j = {{"budget", b.to_json()}, {"met", best != nullptr}};
  if (best) j["best"] = front_entry(*best);
  if (!best && closest) {
    j["closest"] = front_entry(*closest);
    j["closest_excess"] = closest_excess;
  }
  return j;
}

/// Hypervolume of the successful evaluations over (error, latency, size), each relative to the
/// uncompressed network, with reference point 1.1 everywhere: the share of that box the front
/// dominates, comparable across runs of one model.
double relative_hypervolume(const std::vector<Evaluation>& evaluations, const Evaluation& base) {
  std::vector<std::vector<double>> points;
  for (const auto& e : evaluations)
    if (e.scored() && base.latency_ms > 0 && base.size_bytes > 0)
      points.push_back({1.0 - e.accuracy, e.latency_ms / base.latency_ms,
                        static_cast<double>(e.size_bytes) / static_cast<double>(base.size_bytes)});
  if (points.empty()) return 0;
  return hypervolume(points, {1.1, 1.1, 1.1});
}

/// The latency table of `config`, loaded, or profiled on `target` and saved when missing.
latency_models::LookupTable latency_table(const SearchConfig& config, const graph::Network& net,
                                          const SearchSpace& space, targets::Target& target,
                                          const std::function<void(const std::string&)>& say) {
  latency_models::LutContext context;
  context.target = target.name();
  context.precision = config.measure.precision;
  context.threads = config.measure.threads;
  context.batch = config.measure.batch;
  context.model = config.model_path.empty() ? config.model_zoo : config.model_path;
  context.model_hash = latency_models::structure_hash(net);
  if (std::filesystem::exists(config.lut_path)) {
    auto table = latency_models::LookupTable::load(config.lut_path, context);
    if (table.entries().empty() || table.scale() <= 0)
      throw InputError("latency table '" + config.lut_path +
                       "' is not calibrated; finish it with `tightfit profile`");
    return table;
  }
  say("profiling a latency table into " + config.lut_path + " (missing)");
  latency_models::LookupTable table(context);
  targets::MeasureOptions layer_opts = config.measure;
  layer_opts.min_time_ms = std::min(layer_opts.min_time_ms, 50.0);
  const auto keys =
      latency_models::reachable_layer_keys(net, config.space.keep, config.space.channel_multiple);
  latency_models::profile(table, keys, target, layer_opts, {});
  policies::ApplyOptions apply_opts;
  apply_opts.channel_multiple = config.space.channel_multiple;
  std::mt19937_64 rng(config.seed);
  std::vector<policies::CompressedNetwork> calibration = {policies::apply(net, {}, apply_opts)};
  constexpr int kCalibrationPolicies = 5;
  for (int k = 0; k < kCalibrationPolicies; ++k) {
    auto p = space.sample(rng);
    p.weight_bits.clear();  // one precision per table: bits do not change its time
    p.act_bits.clear();
    calibration.push_back(policies::apply(net, p, apply_opts));
  }
  latency_models::calibrate_on(table, calibration, target, config.measure);
  const std::filesystem::path path(config.lut_path);
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  table.save(config.lut_path);
  return table;
}

/// Compressed networks by policy key, at most `max_bytes` of parameters; the oldest go first.
class NetworkCache {
 public:
  explicit NetworkCache(int64_t max_bytes) : max_bytes_(max_bytes) {}

  void put(const std::string& key, policies::CompressedNetwork net, int64_t bytes) {
    if (bytes > max_bytes_ || entries_.count(key)) return;
    while (bytes_ + bytes > max_bytes_) drop(entries_.find(order_.front()));
    order_.push_back(key);
    entries_.emplace(key, Entry{std::move(net), bytes, std::prev(order_.end())});
    bytes_ += bytes;
  }

  /// The network kept under `key`, removed from the cache; nullopt when there is none.
  std::optional<policies::CompressedNetwork> take(const std::string& key) {
    const auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    auto net = std::move(it->second.net);
    drop(it);
    return net;
  }

 private:
  struct Entry {
    policies::CompressedNetwork net;
    int64_t bytes = 0;
    std::list<std::string>::iterator age;  ///< its place in order_
  };
  void drop(std::map<std::string, Entry>::iterator it) {
    bytes_ -= it->second.bytes;
    order_.erase(it->second.age);
    entries_.erase(it);
  }
  int64_t max_bytes_;
  int64_t bytes_ = 0;
  std::map<std::string, Entry> entries_;
  std::list<std::string> order_;  // oldest first
};

}  // namespace

SearchResult run_search(const SearchConfig& config, const RunOptions& opts) {
  const auto t_start = Clock::now();
  auto say = [&](const std::string& msg) {
    if (opts.progress) std::fprintf(stderr, "[search] %s\n", msg.c_str());
  };

  // Everything a user can get wrong is checked before any expensive work starts.
  const std::filesystem::path out(opts.out_dir);
  const auto journal_path = (out / "evaluations.jsonl").string();
  JournalContents previous;
  std::deque<Evaluation> replay;
  if (opts.resume) {
    if (!std::filesystem::exists(journal_path))
      throw InputError("nothing to resume: no " + journal_path + "; run without --resume");
    previous = read_journal(journal_path);
    for (const auto& line : previous.lines) {
      try {
        replay.push_back(Evaluation::from_json(line));
      } catch (const std::exception& e) {
        throw InputError("journal '" + journal_path + "' holds a line that is not an evaluation (" +
                         e.what() + "); start a new run with another --out");
      }
    }
    if (previous.header.is_null())
      throw InputError("cannot resume: " + journal_path + " has no header; run again elsewhere");
    if (previous.header.value("config_hash", "") != config.hash)
      throw InputError(
          "cannot resume: the config changed since this run started (at " +
          config_difference(previous.header.value("config", nlohmann::json()), config.raw) +
          "); use the original config, or a new --out for a new run");
  } else if (std::filesystem::exists(journal_path) &&
             std::filesystem::file_size(journal_path) > 0) {
    throw InputError(journal_path +
                     " exists: continue that run with --resume, or choose another --out "
                     "(a journal is never overwritten)");
  }
  const graph::Network net = config.load_network();
  const auto points = policies::decision_points(net);
  const SearchSpace space(points, config.space);
  auto target = targets::make_target(config.target);
  targets::require_precision(*target, config.measure.precision);
  const datasets::Split data = config.load_data();
  auto evaluator = evaluators::make_evaluator(config.evaluator, config.evaluator_config, data);
  std::optional<latency_models::LookupTable> lut;
  // Drawn once, so a policy compresses to the same network every time it is applied: activation
  // ranges of act_bits candidates are calibrated on these training batches.
  const policies::Calibration calibration = evaluators::sample_calibration(data, config.seed);
  policies::ApplyOptions apply_opts;
  apply_opts.channel_multiple = config.space.channel_multiple;
  apply_opts.calibration = &calibration;
  // Strategies with budgets check proposals before asking for them: counted size and FLOPs, and
  // the table's latency when there is one (the table is loaded below). The networks compressed
  // for that are kept, by policy key, for the evaluation that follows when the proposal is asked
  // for: a candidate is compressed once. At most kPrecompressedBytes of parameters are held; the
  // oldest go first (mostly proposals the filter rejected).
  constexpr int64_t kPrecompressedBytes = int64_t{256} << 20;
  NetworkCache precompressed(kPrecompressedBytes);
  const CostPredictor predict_cost = [&](const policies::Policy& p) {
    auto c = policies::apply(net, p, apply_opts);
    const auto counted = evaluators::count_cost(c);
    PredictedCost out;
    out.size_bytes = counted.size_bytes;
    out.flops = counted.flops;
    if (lut) out.latency_ms = lut->predict({&c}).front();
    precompressed.put(p.key(), std::move(c), counted.params * int64_t{sizeof(float)});
    return out;
  };
  // Strategies that plan with latency (netadapt) get the table's prediction, never a run.
  LatencyPredictor predict_latency;
  if (config.latency_cost == "lut")
    predict_latency = [&](const policies::Policy& p) { return predict_cost(p).latency_ms; };
  // The strategy's config is checked before the (possibly long) profiling; the strategy that
  // runs is built once the table is there, since netadapt predicts from its first step on.
  const LatencyPredictor unused = [](const policies::Policy&) { return 0.0; };
  make_strategy(config.strategy, config.strategy_config, space, config.seed,
                predict_latency ? unused : LatencyPredictor());
  if (config.latency_cost == "lut") lut = latency_table(config, net, space, *target, say);
  auto strategy = make_strategy(config.strategy, config.strategy_config, space, config.seed,
                                predict_latency, predict_cost);

  std::unique_ptr<Screener> screener;
  if (!config.screen.is_null())
    screener = std::make_unique<Screener>(ScreenConfig::from_json(config.screen, "screen"), points);
  // Within a run the network, evaluator, target and cost are fixed: the policy is the content.
  std::map<std::string, Evaluation> cache;
  // Across runs: a shared cache file keyed by everything a result depends on besides the policy
  // (network structure and weights, evaluator and its settings, target, protocol, latency cost
  // and table, tightfit version), so no candidate is evaluated twice by runs that agree on them.
  std::string context_key;
  std::unique_ptr<std::ofstream> shared_cache;
  if (!config.cache_path.empty()) {
    std::string weights;
    for (const auto& node : net.nodes())
      for (const auto& [name, t] : node.params)
        weights.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
    context_key = fnv1a_hex(nlohmann::json{
        {"structure", latency_models::structure_hash(net)},
        {"weights", fnv1a_hex(weights)},
        {"evaluator", evaluator->name()},
        {"settings", evaluator->settings()},
        {"target", target->name()},
        {"measure", config.measure.to_json()},
        {"space_multiple", config.space.channel_multiple},
        {"latency_cost", config.latency_cost},
        {"table", lut ? fnv1a_hex(nlohmann::json(lut->entries()).dump() +
                                  std::to_string(lut->scale()) + std::to_string(lut->offset_ms()))
                      : std::string()},
        {"tightfit",
         TIGHTFIT_VERSION}}.dump());
    int64_t reused = 0;
    std::ifstream in(config.cache_path);
    for (std::string line; std::getline(in, line);) {
      try {  // lines torn by a killed or concurrent writer are skipped
        const auto j = nlohmann::json::parse(line);
        if (j.value("context", "") != context_key) continue;
        cache.emplace(j.at("policy").dump(), Evaluation::from_json(j.at("evaluation")));
        ++reused;
      } catch (const std::exception&) {
      }
    }
    const std::filesystem::path path(config.cache_path);
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
    shared_cache = std::make_unique<std::ofstream>(config.cache_path, std::ios::app);
    if (!*shared_cache)
      throw InputError("cannot write the evaluation cache '" + config.cache_path +
                       "': check the path");
    if (reused > 0)
      say("evaluation cache " + config.cache_path + ": " + std::to_string(reused) +
          " earlier evaluations of this network, evaluator and target");
  }
  // Cost first (latency timed while nothing else runs), accuracy second (in parallel).
  RunStats stats;
  auto compute_cost = [&](const policies::Policy& policy, Evaluation& e,
                          policies::CompressedNetwork& candidate) {
    e.policy = policy;
    e.latency_source = lut ? "lut" : "measured";
    try {
      if (auto kept = precompressed.take(policy.key())) {
        candidate = std::move(*kept);
        ++stats.reused_compressions;
      } else {
        ScopedSeconds timed(stats.apply);
        candidate = policies::apply(net, policy, apply_opts);
      }
      {
        ScopedSeconds timed(stats.count_cost);
        const auto cost = evaluators::count_cost(candidate);
        e.size_bytes = cost.size_bytes;
        e.params = cost.params;
        e.flops = cost.flops;
      }
      ScopedSeconds timed(stats.latency);
      if (lut) {
        e.latency_ms = lut->predict({&candidate}).front();
      } else {
        const auto m = target->measure(candidate, config.measure);
        if (!m.ok()) throw std::runtime_error("latency: " + m.error);
        e.latency_ms = m.median_ms;
        e.latency_spread_ms = m.iqr_ms;
      }
    } catch (const std::exception& ex) {
      e.error = ex.what();  // a failed candidate is data; the search goes on
    }
  };
  auto compute_accuracy = [&](Evaluation& e, const policies::CompressedNetwork& candidate) {
    if (!e.ok()) return;
    const auto acc = evaluator->evaluate(candidate, net);
    if (!acc.ok()) {
      e.error = "accuracy: " + acc.error;
      return;
    }
    e.accuracy = acc.accuracy;
    e.loss = acc.loss;
  };
  // A budget that even the most compressed uniform network misses cannot be met by anything in
  // the space (pruning, bits and rank only ever lower latency, size and FLOPs here).
  if (config.budget.latency_ms > 0 || config.budget.size_bytes > 0 || config.budget.flops > 0) {
    const auto& keep = config.space.keep;
    const auto& bits = config.space.weight_bits;
    const auto smallest = space.uniform(*std::min_element(keep.begin(), keep.end()),
                                        *std::min_element(bits.begin(), bits.end()));
    Evaluation e;  // cost only: the accuracy drop is not part of this check
    policies::CompressedNetwork candidate;
    compute_cost(smallest, e, candidate);
    Budget cost_only = config.budget;
    cost_only.accuracy_drop = 0;
    if (e.ok() && !within_budget(e, cost_only, 0))
      throw InputError("the budget " + cost_only.to_json().dump() +
                       " cannot be met: the most compressed network of this space needs latency " +
                       std::to_string(e.latency_ms) + " ms, " + std::to_string(e.size_bytes) +
                       " bytes, " + std::to_string(e.flops) +
                       " FLOPs; relax the budget or widen the space");
  }

  if (config.model_path.empty())
    say("model '" + config.model_zoo + "' has random weights: accuracies mean little");

  std::filesystem::create_directories(out);
  Journal journal(journal_path, previous.complete_bytes);
  if (previous.complete_bytes == 0)
    journal.append({{"format", kJournalFormat},
                    {"version", 1},
                    {"config_hash", config.hash},
                    {"config", config.raw},
                    {"started", now_utc()}});
  if (!replay.empty())
    say("resuming: " + std::to_string(replay.size()) + " evaluations in the journal");

  SearchResult result;
  result.context = targets::machine_context();
  result.context["tightfit"] = TIGHTFIT_VERSION;
  result.context["target"] = target->name();
  result.context["precision"] = config.measure.precision;
  result.context["threads"] = config.measure.threads;
  result.context["measure"] = config.measure.to_json();
  result.context["latency_cost"] = config.latency_cost;
  if (lut) {
    result.context["latency_table"] = {{"path", config.lut_path},
                                       {"entries", lut->entries().size()},
                                       {"scale", lut->scale()},
                                       {"offset_ms", lut->offset_ms()}};
  }
  result.context["seed"] = config.seed;
  result.context["config_hash"] = config.hash;
  result.context["config"] = config.raw;
  result.context["model"] = config.model_path.empty() ? config.model_zoo : config.model_path;
  result.context["evaluator"] = {{"name", evaluator->name()}, {"settings", evaluator->settings()}};
  result.context["strategy"] = strategy->name();
  result.context["decision_points"] = {{"channels", points.channels.size()},
                                       {"layers", points.layers.size()}};
  result.context["started"] = now_utc();

  // Evaluates `batch` as evaluations first_index, first_index + 1, ...: journaled results are
  // replayed, repeats come from the cache, the rest are costed one by one and then scored for
  // accuracy `config.parallel_evaluations` at a time; journal lines are written in order.
  tbb::task_arena arena(static_cast<int>(config.parallel_evaluations));
  auto evaluate_batch = [&](const std::vector<policies::Policy>& batch, int64_t first_index,
                            const std::string& kind) {
    const auto t0 = Clock::now();
    std::vector<Evaluation> out(batch.size());
    std::vector<bool> from_journal(batch.size(), false);
    std::vector<size_t> fresh;                       // positions computed now
    std::map<std::string, size_t> first_seen;        // key -> position computed now
    std::vector<std::pair<size_t, size_t>> repeats;  // (position, position it repeats)
    for (size_t i = 0; i < batch.size(); ++i) {
      const int64_t index = first_index + static_cast<int64_t>(i);
      const std::string key = batch[i].to_json().dump();
      if (!replay.empty()) {
        Evaluation e = replay.front();
        replay.pop_front();
        if (e.index != index || e.kind != kind || e.policy.to_json().dump() != key)
          throw InputError("cannot resume: evaluation " + std::to_string(index) +
                           " in the journal is not what this run asks for (another tightfit "
                           "version or strategy?); start a new run with another --out");
        ++result.replayed;
        cache.emplace(key, e);
        out[i] = std::move(e);
        from_journal[i] = true;
        continue;
      }
      if (auto it = cache.find(key); it != cache.end()) {
        out[i] = it->second;
        out[i].cached = true;
      } else if (auto it = first_seen.find(key); it != first_seen.end()) {
        repeats.emplace_back(i, it->second);
      } else {
        first_seen.emplace(key, i);
        fresh.push_back(i);
      }
      out[i].index = index;
      out[i].kind = kind;
    }
    std::vector<policies::CompressedNetwork> candidates(fresh.size());
    std::vector<size_t> scored;  // positions in `fresh` the proxy scores
    stats.computed += static_cast<int64_t>(fresh.size());
    for (size_t k = 0; k < fresh.size(); ++k) {
      compute_cost(batch[fresh[k]], out[fresh[k]], candidates[k]);
      Evaluation& e = out[fresh[k]];
      std::optional<double> predicted;
      if (screener && kind == "search") {
        ScopedSeconds timed(stats.screen);
        predicted = screener->screen(e, result.evaluations);
      }
      if (predicted) {
        e.accuracy = *predicted;
        e.accuracy_source = "predictor";
      } else {
        scored.push_back(k);
      }
    }
    {
      ScopedSeconds timed(stats.accuracy);
      arena.execute([&] {
        tbb::parallel_for(size_t{0}, scored.size(), [&](size_t s) {
          compute_accuracy(out[fresh[scored[s]]], candidates[scored[s]]);
        });
      });
    }
    const double seconds = seconds_since(t0);
    for (size_t k : fresh) {
      out[k].eval_seconds = seconds / static_cast<double>(fresh.size());
      cache.emplace(batch[k].to_json().dump(), out[k]);
      if (shared_cache && out[k].scored()) {
        ScopedSeconds timed(stats.journal);
        *shared_cache << nlohmann::json{{"context", context_key},
                                        {"policy", batch[k].to_json()},
                                        {"evaluation", out[k].to_json()}}
                             .dump()
                      << '\n'
                      << std::flush;
      }
    }
    for (const auto& [pos, of] : repeats) {
      const int64_t index = out[pos].index;
      out[pos] = out[of];
      out[pos].index = index;
      out[pos].cached = true;
      out[pos].eval_seconds = 0;
    }
    ScopedSeconds timed(stats.journal);
    for (size_t i = 0; i < out.size(); ++i)
      if (!from_journal[i]) journal.append(out[i].to_json());
    return out;
  };
  auto evaluate = [&](const policies::Policy& policy, int64_t index, const std::string& kind) {
    return evaluate_batch({policy}, index, kind).front();
  };

  stats = RunStats();  // the budget check's costing above is set-up
  stats.setup = seconds_since(t_start);
  const auto t_loop = Clock::now();
  say("baseline: evaluating the uncompressed network");
  result.baseline = evaluate(policies::Policy{}, -1, "baseline");
  if (!result.baseline.ok())
    throw InputError("the uncompressed network cannot be evaluated: " + result.baseline.error);

  int64_t next_index = 0;
  // Uniform baselines: what the search has to beat.
  std::vector<policies::Policy> uniforms;
  const auto& bits = config.space.weight_bits;
  const bool has_8 = std::find(bits.begin(), bits.end(), 8) != bits.end();
  // They stay inside the space: pruned ones only where it prunes.
  bool prunes = false;
  for (size_t g = 0; g < space.num_genes(); ++g)
    prunes = prunes || space.gene_dim(g) == SearchSpace::Dim::kKeep;
  for (double keep : config.baseline_keep) {
    if (!prunes && keep < 1.0) continue;
    uniforms.push_back(space.uniform(keep, 32));
    if (has_8) uniforms.push_back(space.uniform(keep, 8));
  }
  if (has_8) uniforms.push_back(space.uniform(1.0, 8));
  // Activations searched too: int8 deployment (8-bit weights and inputs) is the baseline to beat.
  const auto& act_bits = config.space.act_bits;
  if (has_8 && std::find(act_bits.begin(), act_bits.end(), 8) != act_bits.end())
    uniforms.push_back(space.uniform(1.0, 8, 8));
  for (const auto& p : uniforms) result.evaluations.push_back(evaluate(p, next_index++, "uniform"));

  double best_accuracy = 0;
  for (;;) {
    std::vector<policies::Policy> asked;
    {
      ScopedSeconds timed(stats.strategy);
      asked = strategy->ask(static_cast<size_t>(config.ask_batch));
    }
    if (asked.empty()) break;
    const std::vector<Evaluation> told = evaluate_batch(asked, next_index, "search");
    next_index += static_cast<int64_t>(asked.size());
    for (const auto& e : told) {
      if (is_real_score(e)) best_accuracy = std::max(best_accuracy, e.accuracy);
      result.evaluations.push_back(e);
    }
    {
      ScopedSeconds timed(stats.strategy);
      strategy->tell(told);
    }
    if (opts.progress && replay.empty()) {
      const double elapsed = seconds_since(t_start);
      const size_t front_size = pareto_front(result.evaluations).size();
      int64_t total = -1;
      if (config.strategy_config.contains("evaluations"))
        total = config.strategy_config["evaluations"].get<int64_t>() +
                static_cast<int64_t>(uniforms.size());
      const int64_t fresh = next_index - result.replayed;
      std::ostringstream os;
      os << next_index << (total > 0 ? "/" + std::to_string(total) : "") << " evaluations"
         << "  best accuracy " << std::fixed << std::setprecision(4) << best_accuracy << "  front "
         << front_size << "  hypervolume " << std::setprecision(4)
         << relative_hypervolume(result.evaluations, result.baseline) << "  "
         << std::setprecision(0) << elapsed << "s";
      if (total > 0 && fresh > 0)
        os << "  ETA "
           << elapsed / static_cast<double>(fresh) * static_cast<double>(total - next_index) << "s";
      say(os.str());
    }
  }
  stats.loop = seconds_since(t_loop);
  const auto t_finish = Clock::now();
  result.front = pareto_front(result.evaluations);
  // Each front member compressed once, for its measurement, fine-tune and network file.
  std::vector<policies::CompressedNetwork> front_nets;
  for (size_t i : result.front)
    front_nets.push_back(policies::apply(net, result.evaluations[i].policy, apply_opts));

  // With predicted latency, the front is measured for real; both figures are kept.
  if (lut) {
    say("measuring the " + std::to_string(result.front.size()) + " front members end to end");
    for (size_t k = 0; k < result.front.size(); ++k) {
      auto& e = result.evaluations[result.front[k]];
      const auto m = target->measure(front_nets[k], config.measure);
      if (m.ok()) {
        e.measured_latency_ms = m.median_ms;
        e.latency_spread_ms = m.iqr_ms;
      }
    }
  }
  std::filesystem::create_directories(out / "models");
  // Optionally every front member fine-tuned: its accuracy after, and how well the proxy's
  // ranking of the front agrees with it.
  if (!config.finetune_front.is_null()) {
    evaluators::FinetuneEvaluator tune(
        evaluators::FinetuneConfig::from_json(config.finetune_front, "finetune_front"), data);
    std::vector<double> proxy, tuned;
    for (size_t k = 0; k < result.front.size(); ++k) {
      auto& e = result.evaluations[result.front[k]];
      say("fine-tuning front member " + std::to_string(k + 1) + "/" +
          std::to_string(result.front.size()) + " (evaluation " + std::to_string(e.index) + ")");
      evaluators::AccuracyResult r;
      try {
        const auto tuned = tune.tune(front_nets[k], net);
        r = tune.score(tuned);
        if (r.ok())
          graph::save_network(
              tuned, (out / "models" / (std::to_string(e.index) + ".finetuned.tfn")).string());
      } catch (const std::exception& ex) {
        r.error = ex.what();
      }
      if (!r.ok()) {
        say("fine-tuning evaluation " + std::to_string(e.index) + " failed: " + r.error);
        continue;
      }
      e.finetuned_accuracy = r.accuracy;
      proxy.push_back(e.accuracy);
      tuned.push_back(r.accuracy);
    }
    nlohmann::json fidelity = {{"finetune", tune.settings()}, {"n", proxy.size()}};
    if (proxy.size() >= 2) fidelity.update(evaluators::rank_agreement(proxy, tuned).to_json());
    result.context["front_fidelity"] = fidelity;
  }
  // Every front member as a network file, ready to deploy or fine-tune.
  for (size_t k = 0; k < result.front.size(); ++k)
    graph::save_network(
        front_nets[k].net,
        (out / "models" / (std::to_string(result.evaluations[result.front[k]].index) + ".tfn"))
            .string());

  if (screener) result.context["screen"] = screener->summary();
  stats.finish = seconds_since(t_finish);  // the report files below take milliseconds
  result.stats = stats;
  result.context["run_stats"] = stats.to_json();
  result.context["finished"] = now_utc();
  result.context["evaluations"] = result.evaluations.size();
  result.context["replayed"] = result.replayed;
  result.context["hypervolume"] = relative_hypervolume(result.evaluations, result.baseline);
  result.context["failed"] = std::count_if(result.evaluations.begin(), result.evaluations.end(),
                                           [](const Evaluation& e) { return !e.ok(); });

  nlohmann::json front = nlohmann::json::array();
  std::ostringstream csv;
  csv << "index,accuracy,latency_ms,latency_spread_ms,size_bytes,params,flops,"
         "measured_latency_ms,policy\n";
  for (size_t i : result.front) {
    const auto& e = result.evaluations[i];
    front.push_back(front_entry(e));
    csv << e.index << ',' << e.accuracy << ',' << e.latency_ms << ',' << e.latency_spread_ms << ','
        << e.size_bytes << ',' << e.params << ',' << e.flops << ',' << e.measured_latency_ms << ','
        << csv_quote(e.policy.to_json().dump()) << '\n';
  }
  nlohmann::json uniform = nlohmann::json::array();
  for (const auto& e : result.evaluations)
    if (e.kind == "uniform") uniform.push_back(front_entry(e));
  nlohmann::json doc = {{"front", front},
                        {"baseline", front_entry(result.baseline)},
                        {"uniform", uniform},
                        {"context", result.context}};
  if (config.budget.any()) {
    result.best = best_under_budget(result.evaluations, config.budget, result.baseline.accuracy);
    result.best["context"] = result.context;
    doc["best"] = result.best;
    write_text(out / "best.json", result.best.dump(2) + "\n");
  }
  write_text(out / "front.json", doc.dump(2) + "\n");
  write_text(out / "front.csv", csv.str());
  write_report(out.string());
  return result;
}

nlohmann::json RunStats::to_json() const {
  const double n = computed > 0 ? static_cast<double>(computed) : 1.0;
  return {{"computed", computed},
          {"reused_compressions", reused_compressions},
          {"seconds",
           {{"setup", setup},
            {"loop", loop},
            {"latency", latency},
            {"accuracy", accuracy},
            {"engine", engine()},
            {"apply", apply},
            {"count_cost", count_cost},
            {"strategy", strategy},
            {"screen", screen},
            {"journal", journal},
            {"other", other()},
            {"finish", finish}}},
          {"ms_per_candidate",
           {{"evaluation", 1e3 * evaluation() / n}, {"engine", 1e3 * engine() / n}}},
          {"overhead_share", overhead_share()}};
}

std::string front_table(const SearchResult& r) {
  std::ostringstream os;
  auto row = [&](const std::string& label, const Evaluation& e, size_t channels) {
    os << std::left << std::setw(10) << label << std::right << std::fixed << std::setprecision(4)
       << std::setw(9) << e.accuracy << std::setprecision(3) << std::setw(12) << e.latency_ms
       << std::setw(10) << e.latency_spread_ms << std::setprecision(1) << std::setw(11)
       << static_cast<double>(e.size_bytes) / 1024.0 << std::setw(10)
       << static_cast<double>(e.flops) / 1e6 << std::setprecision(2) << std::setw(10)
       << mean_keep(e.policy, channels) << std::setw(8) << e.policy.weight_bits.size() << '\n';
  };
  const size_t channels = r.context.contains("decision_points")
                              ? r.context["decision_points"]["channels"].get<size_t>()
                              : 0;
  os << std::left << std::setw(10) << "candidate" << std::right << std::setw(9) << "accuracy"
     << std::setw(12) << "latency_ms" << std::setw(10) << "iqr_ms" << std::setw(11) << "size_KiB"
     << std::setw(10) << "MFLOPs" << std::setw(10) << "mean_keep" << std::setw(8) << "int8" << '\n';
  row("baseline", r.baseline, channels);
  for (size_t i : r.front)
    row("#" + std::to_string(r.evaluations[i].index), r.evaluations[i], channels);
  return os.str();
}

}  // namespace tightfit::search
