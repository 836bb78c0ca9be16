#include "search/front.h"

#include <algorithm>
#include <filesystem>

#include "evaluators/fidelity.h"
#include "evaluators/finetune.h"
#include "graph/serialize.h"
#include "models/torchscript.h"
#include "search/controller.h"
#include "search/moo.h"
#include "search/pareto.h"
#include "targets/libtorch_int8.h"

namespace tightfit::search {

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

/// Measures each front member end to end: the search predicted their latency.
void measure_front(const Session& session, SearchResult& result,
                   const std::vector<policies::CompressedNetwork>& nets, const Say& say) {
  say("measuring the " + std::to_string(result.front.size()) + " front members end to end");
  for (size_t k = 0; k < result.front.size(); ++k) {
    auto& e = result.evaluations[result.front[k]];
    const auto m = session.target->measure(nets[k], session.config.measure);
    if (m.ok()) {
      e.measured_latency_ms = m.median_ms;
      e.latency_spread_ms = m.iqr_ms;
    }
  }
}

/// Fine-tunes the front members the proxy scores highest (config front_top_k): their accuracy
/// after, their networks, and how well the proxy's ranking of them agrees with the fine-tuned
/// accuracies.
void finetune_front(const Session& session, SearchResult& result,
                    const std::vector<policies::CompressedNetwork>& nets,
                    const std::filesystem::path& models, const Say& say) {
  evaluators::FinetuneEvaluator tune(
      evaluators::FinetuneConfig::from_json(session.config.finetune_front, "finetune_front"),
      session.data);
  // Front positions, the most accurate first (ties: the earlier evaluation).
  std::vector<size_t> order(result.front.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  const auto accuracy = [&](size_t k) { return result.evaluations[result.front[k]].accuracy; };
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return accuracy(a) > accuracy(b); });
  order.resize(std::min(order.size(), static_cast<size_t>(session.config.front_top_k)));
  std::vector<double> proxy, tuned;
  for (size_t n = 0; n < order.size(); ++n) {
    const size_t k = order[n];
    auto& e = result.evaluations[result.front[k]];
    say("fine-tuning front member " + std::to_string(n + 1) + "/" + std::to_string(order.size()) +
        " (evaluation " + std::to_string(e.index) + ") to check the proxy's ranking");
    evaluators::AccuracyResult r;
    try {
      const auto network = tune.tune(nets[k], session.net);
      r = tune.score(network);
      if (r.ok())
        graph::save_network(network,
                            (models / (std::to_string(e.index) + ".finetuned.tfn")).string());
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
  nlohmann::json fidelity = {
      {"finetune", tune.settings()}, {"top_k", session.config.front_top_k}, {"n", proxy.size()}};
  if (proxy.size() >= 2) fidelity.update(evaluators::rank_agreement(proxy, tuned).to_json());
  result.context["front_fidelity"] = fidelity;
}

}  // namespace

void finalize_front(const Session& session, SearchResult& result, const std::string& dir,
                    const Say& say) {
  result.front = pareto_front(result.evaluations);
  // Each front member compressed once, for its measurement, fine-tune and network file.
  std::vector<policies::CompressedNetwork> nets;
  for (size_t i : result.front) nets.push_back(session.apply(result.evaluations[i].policy));
  if (!session.cost->times_on_target()) measure_front(session, result, nets, say);
  // What runs in int8 on the target (compiled, not timed; a member that fails to compile is
  // left unknown).
  const auto int8_layers = [&](const policies::CompressedNetwork& c) -> int64_t {
    try {
      return session.target->int8_layers(c, session.config.measure);
    } catch (const std::exception&) {
      return -1;
    }
  };
  for (size_t k = 0; k < result.front.size(); ++k)
    result.evaluations[result.front[k]].int8_layers = int8_layers(nets[k]);
  result.baseline.int8_layers = int8_layers(session.apply(policies::Policy{}));
  const auto models = std::filesystem::path(dir) / "models";
  std::filesystem::create_directories(models);
  if (session.config.front_fidelity()) finetune_front(session, result, nets, models, say);
  const bool torchscript = !session.config.export_format.empty();
  const bool int8 = session.config.export_format == "torchscript-int8";
  for (size_t k = 0; k < result.front.size(); ++k) {
    const std::string stem =
        (models / std::to_string(result.evaluations[result.front[k]].index)).string();
    // The network whose accuracy the front reports (BatchNorm recalibrated where the proxy
    // recalibrates), so that the file scores what the run said.
    const graph::Network net = session.evaluator->evaluated_network(nets[k], session.net);
    graph::save_network(net, stem + ".tfn");
    if (int8)
      targets::LibTorchInt8Model(net).export_torchscript(net, stem + ".pt");
    else if (torchscript)
      models::export_torchscript(net, stem + ".pt");
  }
  if (torchscript)
    say("front exported as TorchScript" +
        std::string(int8 ? " with LibTorch int8 ops (load with the onednn quantized engine)" : "") +
        ": " + models.string() + "/<#>.pt (torch.jit.load)");
}

}  // namespace tightfit::search
