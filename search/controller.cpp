#include "search/controller.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "datasets/fashion_mnist.h"
#include "evaluators/cost.h"
#include "evaluators/evaluator.h"
#include "graph/json_util.h"
#include "graph/serialize.h"
#include "models/zoo.h"
#include "policies/compress.h"
#include "search/pareto.h"
#include "search/strategy.h"
#include "targets/target.h"

namespace tightfit::search {

namespace {

using Clock = std::chrono::steady_clock;

/// evaluations.jsonl: one JSON line per evaluation, flushed and fsynced so that an evaluation
/// counts once it is on disk (invariant 4).
class Journal {
 public:
  explicit Journal(const std::string& path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw InputError("cannot write '" + path + "': check that --out is writable");
  }
  ~Journal() {
    if (fd_ >= 0) ::close(fd_);
  }
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  void append(const nlohmann::json& j) {
    const std::string line = j.dump() + "\n";
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0) throw InputError("writing the journal failed (disk full?)");
      p += n;
      left -= static_cast<size_t>(n);
    }
    ::fsync(fd_);
  }

 private:
  int fd_ = -1;
};

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
  return {{"index", e.index},
          {"policy", e.policy.to_json()},
          {"accuracy", e.accuracy},
          {"loss", e.loss},
          {"latency_ms", e.latency_ms},
          {"latency_spread_ms", e.latency_spread_ms},
          {"size_bytes", e.size_bytes},
          {"params", e.params},
          {"flops", e.flops}};
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
    if (!e.ok()) continue;
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

SearchResult run_search(const SearchConfig& config, const RunOptions& opts) {
  const auto t_start = Clock::now();
  auto say = [&](const std::string& msg) {
    if (opts.progress) std::fprintf(stderr, "[search] %s\n", msg.c_str());
  };

  // Everything a user can get wrong is checked before any expensive work starts.
  graph::Network net;
  if (!config.model_path.empty()) {
    net = graph::load_network(config.model_path);
  } else {
    net = models::make_model(config.model_zoo, models::default_options(config.model_zoo));
  }
  const auto points = policies::decision_points(net);
  const SearchSpace space(points, config.space);
  auto strategy = make_strategy(config.strategy, config.strategy_config, space, config.seed);
  auto target = targets::make_target(config.target);
  datasets::SplitOptions split_opts;
  split_opts.validation_count = config.validation_count;
  const datasets::Split data = datasets::load_fashion_mnist(config.data_dir, split_opts);
  auto evaluator = evaluators::make_evaluator(config.evaluator, config.evaluator_config, data);
  if (config.model_path.empty())
    say("model '" + config.model_zoo + "' has random weights: accuracies mean little");

  std::filesystem::create_directories(opts.out_dir);
  const std::filesystem::path out(opts.out_dir);
  Journal journal((out / "evaluations.jsonl").string());

  SearchResult result;
  result.context = targets::machine_context();
  result.context["tightfit"] = TIGHTFIT_VERSION;
  result.context["target"] = target->name();
  result.context["precision"] = target->capabilities().precisions.front();
  result.context["threads"] = config.measure.threads;
  result.context["measure"] = config.measure.to_json();
  result.context["seed"] = config.seed;
  result.context["config_hash"] = config.hash;
  result.context["config"] = config.raw;
  result.context["model"] = config.model_path.empty() ? config.model_zoo : config.model_path;
  result.context["evaluator"] = {{"name", evaluator->name()}, {"settings", evaluator->settings()}};
  result.context["strategy"] = strategy->name();
  result.context["decision_points"] = {{"channels", points.channels.size()},
                                       {"layers", points.layers.size()}};
  result.context["started"] = now_utc();

  policies::ApplyOptions apply_opts;
  apply_opts.channel_multiple = config.space.channel_multiple;
  auto evaluate = [&](const policies::Policy& policy, int64_t index, const std::string& kind) {
    const auto t0 = Clock::now();
    Evaluation e;
    e.index = index;
    e.kind = kind;
    e.policy = policy;
    try {
      const auto candidate = policies::apply(net, policy, apply_opts);
      const auto cost = evaluators::count_cost(candidate);
      e.size_bytes = cost.size_bytes;
      e.params = cost.params;
      e.flops = cost.flops;
      const auto m = target->measure(candidate, config.measure);
      if (!m.ok()) throw std::runtime_error("latency: " + m.error);
      e.latency_ms = m.median_ms;
      e.latency_spread_ms = m.iqr_ms;
      const auto acc = evaluator->evaluate(candidate, net);
      if (!acc.ok()) throw std::runtime_error("accuracy: " + acc.error);
      e.accuracy = acc.accuracy;
      e.loss = acc.loss;
    } catch (const std::exception& ex) {
      e.error = ex.what();  // a failed candidate is data; the search goes on
    }
    e.eval_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    journal.append(e.to_json());
    return e;
  };

  say("baseline: evaluating the uncompressed network");
  result.baseline = evaluate(policies::Policy{}, -1, "baseline");
  if (!result.baseline.ok())
    throw InputError("the uncompressed network cannot be evaluated: " + result.baseline.error);

  int64_t next_index = 0;
  double best_accuracy = 0;
  for (;;) {
    const auto asked = strategy->ask(static_cast<size_t>(config.ask_batch));
    if (asked.empty()) break;
    std::vector<Evaluation> told;
    for (const auto& policy : asked) {
      Evaluation e = evaluate(policy, next_index++, "search");
      if (e.ok()) best_accuracy = std::max(best_accuracy, e.accuracy);
      told.push_back(e);
      result.evaluations.push_back(std::move(e));
    }
    strategy->tell(told);
    if (opts.progress) {
      const double elapsed = std::chrono::duration<double>(Clock::now() - t_start).count();
      const size_t front_size = pareto_front(result.evaluations).size();
      int64_t total = -1;
      if (config.strategy_config.contains("evaluations"))
        total = config.strategy_config["evaluations"].get<int64_t>();
      std::ostringstream os;
      os << next_index << (total > 0 ? "/" + std::to_string(total) : "") << " evaluations"
         << "  best accuracy " << std::fixed << std::setprecision(4) << best_accuracy << "  front "
         << front_size << "  " << std::setprecision(0) << elapsed << "s";
      if (total > 0 && next_index > 0)
        os << "  ETA "
           << elapsed / static_cast<double>(next_index) * static_cast<double>(total - next_index)
           << "s";
      say(os.str());
    }
  }
  result.front = pareto_front(result.evaluations);
  result.context["finished"] = now_utc();
  result.context["evaluations"] = result.evaluations.size();
  result.context["failed"] = std::count_if(result.evaluations.begin(), result.evaluations.end(),
                                           [](const Evaluation& e) { return !e.ok(); });

  nlohmann::json front = nlohmann::json::array();
  std::ostringstream csv;
  csv << "index,accuracy,latency_ms,latency_spread_ms,size_bytes,params,flops,policy\n";
  for (size_t i : result.front) {
    const auto& e = result.evaluations[i];
    front.push_back(front_entry(e));
    csv << e.index << ',' << e.accuracy << ',' << e.latency_ms << ',' << e.latency_spread_ms << ','
        << e.size_bytes << ',' << e.params << ',' << e.flops << ','
        << csv_quote(e.policy.to_json().dump()) << '\n';
  }
  const nlohmann::json doc = {
      {"front", front}, {"baseline", front_entry(result.baseline)}, {"context", result.context}};
  write_text(out / "front.json", doc.dump(2) + "\n");
  write_text(out / "front.csv", csv.str());
  return result;
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
