// `tightfit compress`: applies one policy to a model and writes the compressed network and a
// report of what changed per layer and what it costs.

#include "policies/compress.h"

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "core/json.h"
#include "evaluators/bn_recal.h"
#include "evaluators/cost.h"
#include "evaluators/evaluator.h"
#include "graph/executor.h"
#include "graph/serialize.h"
#include "search/session.h"

namespace tightfit::cli {

int cmd_compress(const CompressArgs& a) {
  search::Session session(
      search::policy_command_config(a.model, a.data_dir, a.channel_multiple, a.seed));
  const graph::Network& net = session.net;
  const auto policy = policies::Policy::from_json(read_json_file(a.policy), a.policy);
  policies::validate(policy, net);  // before loading any data

  const bool need_data = !a.no_eval || policies::needs_calibration(policy);
  // Calibration batches only when the policy reads data (criteria, activation ranges).
  if (need_data)
    session.load_data(policies::needs_calibration(policy) ? a.calibration_batches : 0,
                      a.calibration_batch_size);
  const datasets::Split& data = session.data;
  session.apply_opts.seed = a.seed;
  const auto c = session.apply(policy);
  std::filesystem::create_directories(a.out);
  const auto out = std::filesystem::path(a.out);
  graph::save_network(c.net, (out / "compressed.tfn").string());

  const auto shapes_before = graph::infer_shapes(net);
  const auto shapes_after = graph::infer_shapes(c.net);
  nlohmann::json layers = nlohmann::json::array();
  for (int i = 0; i < c.net.size(); ++i) {
    const auto& n = c.net.node(i);
    if (!graph::has_weights(n.op)) continue;
    const auto& info = c.layers.at(n.name);
    const int before = net.find(info.origin);
    nlohmann::json layer = {{"name", n.name},
                            {"origin", info.origin},
                            {"op", graph::op_name(n.op)},
                            {"weight_after", n.params.at("weight").shape},
                            {"output_after", shapes_after[i]},
                            {"weight_bits", info.weight_bits},
                            {"act_bits", info.act_bits},
                            {"sparsity", info.sparsity},
                            {"weights", info.weights},
                            {"nonzeros", info.nonzeros},
                            {"code_bytes", info.code_bytes},
                            {"metadata_bytes", info.metadata_bytes},
                            {"index_bytes", info.index_bytes},
                            {"bytes", info.weight_bytes()}};
    if (!info.scheme.empty()) layer["scheme"] = info.scheme;
    if (before >= 0) {
      layer["weight_before"] = net.node(before).params.at("weight").shape;
      layer["output_before"] = shapes_before[before];
    }
    layers.push_back(layer);
  }
  nlohmann::json lowrank = nlohmann::json::array();
  for (const auto& r : c.lowrank) lowrank.push_back(r.to_json());

  policies::CompressedNetwork original;
  original.net = net;
  const auto cost_before = evaluators::count_cost(original);
  const auto cost_after = evaluators::count_cost(c);
  nlohmann::json report = {{"model", a.model},
                           {"policy", policy.to_json()},
                           {"channel_multiple", a.channel_multiple},
                           {"layers", layers},
                           {"lowrank", lowrank},
                           {"kept_channels", c.kept_channels},
                           {"before",
                            {{"params", cost_before.params},
                             {"flops", cost_before.flops},
                             {"size_bytes", cost_before.size_bytes}}},
                           {"after",
                            {{"params", cost_after.params},
                             {"flops", cost_after.flops},
                             {"size_bytes", cost_after.size_bytes}}}};
  if (!a.no_eval) {
    // Both networks scored alike: BN statistics re-estimated on the same training batches.
    for (const auto& [key, network] :
         {std::pair<const char*, const graph::Network*>{"before", &net}, {"after", &c.net}}) {
      graph::Executor ex(*network);
      evaluators::recalibrate_bn(ex, data, a.bn_batches, 128, a.seed);
      report[key]["test_accuracy"] = models::evaluate(ex, data.test, data.mean, data.std).accuracy;
    }
    report["accuracy_note"] = "test set, after re-estimating BatchNorm statistics on " +
                              std::to_string(a.bn_batches) + " training batches; no fine-tuning";
  }
  {
    std::ofstream f(out / "report.json");
    f << report.dump(2) << "\n";
  }
  if (a.json) {
    std::cout << report.dump(2) << "\n";
    return 0;
  }
  std::printf("%s -> %s/compressed.tfn (report.json beside it)\n", a.model.c_str(), a.out.c_str());
  std::printf("  params %lld -> %lld, MFLOPs %.2f -> %.2f, size %lld -> %lld bytes\n",
              static_cast<long long>(cost_before.params), static_cast<long long>(cost_after.params),
              cost_before.flops / 1e6, cost_after.flops / 1e6,
              static_cast<long long>(cost_before.size_bytes),
              static_cast<long long>(cost_after.size_bytes));
  for (const auto& r : c.lowrank)
    if (!r.applied) std::printf("  low-rank %s not applied: %s\n", r.layer.c_str(), r.note.c_str());
  if (!a.no_eval)
    std::printf("  test accuracy %.4f -> %.4f (BN recalibrated, no fine-tuning)\n",
                report["before"]["test_accuracy"].get<double>(),
                report["after"]["test_accuracy"].get<double>());
  return 0;
}

}  // namespace tightfit::cli
