// `tightfit info`: a model's layers, shapes, channel groups, and every decision point with what
// can be applied to it.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "core/errors.h"
#include "core/json.h"
#include "graph/channels.h"
#include "graph/serialize.h"
#include "models/loader.h"
#include "models/zoo.h"
#include "policies/importance.h"
#include "policies/policy.h"
#include "policies/quantize.h"

namespace tightfit::cli {

int cmd_info(const std::string& model, bool json) {
  const graph::Network net = models::load_model(model);
  const auto shapes = graph::infer_shapes(net);
  const auto ca = graph::analyze_channels(net);
  nlohmann::json j;
  j["model"] = model;
  j["input"] = net.input_shape();
  j["params"] = net.num_params();
  j["meta"] = net.meta();
  for (int i = 0; i < net.size(); ++i) {
    const auto& n = net.node(i);
    nlohmann::json inputs = nlohmann::json::array();
    for (int k : n.inputs) inputs.push_back(net.node(k).name);
    nlohmann::json groups = nlohmann::json::array();
    for (const auto& seg : ca.layouts[i].segments) groups.push_back(ca.groups[seg.group].id);
    j["layers"].push_back({{"name", n.name},
                           {"op", graph::op_name(n.op)},
                           {"inputs", inputs},
                           {"shape", shapes[i]},
                           {"channel_groups", groups}});
  }
  for (const auto& g : ca.groups) {
    nlohmann::json producers = nlohmann::json::array();
    for (int p : g.producers) producers.push_back(net.node(p).name);
    nlohmann::json group = {
        {"id", g.id}, {"channels", g.channels}, {"producers", producers}, {"prunable", g.prunable}};
    if (!g.prunable) group["reason"] = g.reason;
    j["groups"].push_back(group);
  }
  const auto dp = policies::decision_points(net, ca);
  for (const auto& c : dp.channels)
    j["decision_points"]["channels"].push_back({{"id", c.id},
                                                {"channels", c.channels},
                                                {"layers", c.layers},
                                                {"keep", "(0, 1]"},
                                                {"keep_count", {1, c.channels}}});
  for (const auto& l : dp.layers) {
    nlohmann::json layer = {{"layer", l.name},
                            {"op", l.op},
                            {"weights", l.weight_params},
                            {"weight_bits", policies::kWeightBits},
                            {"act_bits", policies::kActivationBits},
                            {"sparsity", "[0, 1)"}};
    if (l.full_rank > 0) {
      layer["rank"] = {{"full_rank", l.full_rank},
                       {"kinds", l.op == "linear" ? nlohmann::json{"svd"}
                                                  : nlohmann::json{"tucker2", "spatial"}}};
    } else {
      layer["rank"] = "not factorizable (grouped convolution)";
    }
    j["decision_points"]["layers"].push_back(layer);
  }
  j["methods"] = {{"criterion", policies::criterion_names()},
                  {"quantization.scheme", policies::quant_scheme_names()},
                  {"quantization.granularity", {"per_channel", "per_tensor"}},
                  {"quantization.calibration", {"minmax", "percentile", "mse"}},
                  {"factorization.conv", {"tucker2", "spatial"}},
                  {"factorization.rank_by", {"fraction", "count", "energy"}},
                  {"sparsity_scope", {"layer", "global"}}};
  if (json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  std::printf("model %s: input %s, %lld params, %d nodes\n\n", model.c_str(),
              graph::shape_str(net.input_shape()).c_str(), static_cast<long long>(net.num_params()),
              net.size());
  std::printf("%-36s %-18s %-14s %s\n", "layer", "op", "output", "channel groups");
  for (const auto& l : j["layers"]) {
    std::string groups;
    for (const auto& g : l["channel_groups"])
      groups += (groups.empty() ? "" : "+") + g.get<std::string>();
    std::printf("%-36s %-18s %-14s %s\n", l["name"].get<std::string>().c_str(),
                l["op"].get<std::string>().c_str(),
                graph::shape_str(l["shape"].get<graph::Shape>()).c_str(), groups.c_str());
  }
  std::printf("\nchannel groups (%zu):\n", ca.groups.size());
  for (const auto& g : j["groups"]) {
    std::string producers;
    for (const auto& p : g["producers"])
      producers += (producers.empty() ? "" : ", ") + p.get<std::string>();
    const std::string status = g["prunable"].get<bool>()
                                   ? std::string("prunable")
                                   : "fixed: " + g["reason"].get<std::string>();
    std::printf("  %-32s %5lld ch  %s  [%s]\n", g["id"].get<std::string>().c_str(),
                g["channels"].get<long long>(), status.c_str(), producers.c_str());
  }
  std::printf(
      "\nchannel decision points (%zu): keep a fraction in (0, 1] or a count "
      "(keep / keep_count)\n",
      dp.channels.size());
  for (const auto& c : dp.channels)
    std::printf("  %-32s %5lld ch\n", c.id.c_str(), static_cast<long long>(c.channels));
  std::printf(
      "\nlayer decision points (%zu): weight_bits {32,16,8,6,4,3,2,1}, act_bits "
      "{32,16,8,6,4,3,2}, sparsity [0, 1), rank:\n",
      dp.layers.size());
  for (const auto& l : dp.layers) {
    const std::string rank = l.full_rank > 0
                                 ? "full rank " + std::to_string(l.full_rank) +
                                       (l.op == "linear" ? " (svd)" : " (tucker2, spatial)")
                                 : "not factorizable (grouped)";
    std::printf("  %-32s %-7s %9lld weights  %s\n", l.name.c_str(), l.op.c_str(),
                static_cast<long long>(l.weight_params), rank.c_str());
  }
  std::printf(
      "\nmethods: criterion {%s}; quantization.scheme {%s}; factorization.conv {tucker2, "
      "spatial}\n",
      join(policies::criterion_names()).c_str(), join(policies::quant_scheme_names()).c_str());
  return 0;
}

}  // namespace tightfit::cli
