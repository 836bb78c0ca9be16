// `tightfit export`: the network a user deploys, as TorchScript. From a model and a policy (as
// `compress` applies it), from a model alone, or from a search run's front member (the network
// the search saved for it); pruned channels are gone and factorized layers are their factors, so
// the file is as small as the compressed network.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "core/errors.h"
#include "core/json.h"
#include "graph/serialize.h"
#include "models/torchscript.h"
#include "search/session.h"
#include "targets/libtorch_int8.h"

namespace tightfit::cli {

namespace {

/// The front member `member` of run folder `run`: the network the search saved for it.
graph::Network front_member(const std::string& run, int64_t member) {
  namespace fs = std::filesystem;
  const fs::path models = fs::path(run) / "models";
  if (!fs::is_directory(models))
    throw InputError("'" + run +
                     "' has no models/ folder; pass the --out folder of a finished "
                     "`tightfit search`");
  const fs::path file = models / (std::to_string(member) + ".tfn");
  if (!fs::exists(file)) {
    std::vector<std::string> members;
    for (const auto& e : fs::directory_iterator(models)) {
      const std::string name = e.path().filename().string();
      if (e.path().extension() == ".tfn" && name.find('.') == name.rfind('.'))
        members.push_back(e.path().stem().string());
    }
    std::sort(members.begin(), members.end());
    throw InputError("run '" + run + "' has no front member " + std::to_string(member) +
                     "; its front members: " + join(members) +
                     " (the # column of its front table)");
  }
  return graph::load_network(file.string());
}

}  // namespace

CLI::App* add_export_command(CLI::App& app, ExportArgs& a) {
  auto* cmd = app.add_subcommand(
      "export",
      "Write a network (compressed by a policy, or a search's front member) as TorchScript for "
      "torch.jit.load in Python or C++, with its reduced shapes");
  cmd->add_option("--model", a.model, "Network file (TorchScript, .tfn) or zoo model name");
  cmd->add_option("--policy", a.policy, "Policy JSON applied to --model first");
  cmd->add_option("--run", a.run, "A search's run folder (--out of `tightfit search`)");
  cmd->add_option("--member", a.member, "With --run: the front member (its # in the front table)");
  cmd->add_option("--out", a.out, "TorchScript file to write (.pt)")->required();
  cmd->add_option("--channel-multiple", a.channel_multiple, "Round kept channels to this")
      ->capture_default_str();
  cmd->add_option("--calibration-batches", a.calibration_batches,
                  "Training batches for data-driven criteria and activation ranges")
      ->capture_default_str();
  cmd->add_option("--data-dir", a.data_dir, "Fashion-MNIST folder (calibration, if needed)")
      ->capture_default_str();
  cmd->add_option("--seed", a.seed, "Calibration sampling, random criterion")
      ->check(unsigned_integer())
      ->capture_default_str();
  cmd->add_flag("--int8", a.int8,
                "Layers that cpu-libtorch runs in int8 (8-bit weights, 8-bit unsigned input) as "
                "LibTorch's quantized ops, as that target runs them; load with "
                "torch.backends.quantized.engine = 'onednn'");
  cmd->add_flag("--json", a.json, "Machine-readable summary on stdout");
  return cmd;
}

int cmd_export(const ExportArgs& a) {
  if (a.run.empty() == a.model.empty())
    throw ConfigError("give --model (with an optional --policy) or --run with --member");
  if (!a.run.empty() && (a.member < 0 || !a.policy.empty()))
    throw ConfigError("--run takes --member (the front member's #) and no --policy");
  int64_t params_before = 0;
  const auto network = [&]() -> graph::Network {
    if (!a.run.empty()) return front_member(a.run, a.member);
    search::Session session(
        search::policy_command_config(a.model, a.data_dir, a.channel_multiple, a.seed));
    params_before = session.net.num_params();
    if (a.policy.empty()) return session.net;
    const auto policy = policies::Policy::from_json(read_json_file(a.policy), a.policy);
    policies::validate(policy, session.net);
    if (policies::needs_calibration(policy)) session.load_data(a.calibration_batches);
    session.apply_opts.seed = a.seed;
    return session.apply(policy).net;
  };
  const graph::Network net = network();
  int64_t int8_layers = 0;
  if (a.int8) {
    if (!targets::LibTorchInt8Model::supported())
      throw InputError("--int8: this LibTorch has no onednn quantized engine; export without it");
    const targets::LibTorchInt8Model model(net);
    int8_layers = model.int8_layers();
    model.export_torchscript(net, a.out);
  } else {
    models::export_torchscript(net, a.out);
  }
  const nlohmann::json summary = {{"out", a.out},
                                  {"int8_layers", int8_layers},
                                  {"params", net.num_params()},
                                  {"params_before", params_before},
                                  {"input_shape", net.input_shape()},
                                  {"nodes", net.size()}};
  if (a.json) {
    std::cout << summary.dump(2) << "\n";
  } else {
    std::printf(
        "wrote %s: TorchScript, input %s, %lld params%s%s\n", a.out.c_str(),
        graph::shape_str(net.input_shape()).c_str(), static_cast<long long>(net.num_params()),
        params_before > 0 ? (" (from " + std::to_string(params_before) + ")").c_str() : "",
        a.int8 ? (", " + std::to_string(int8_layers) + " layers as LibTorch int8 ops").c_str()
               : "");
  }
  return 0;
}

}  // namespace tightfit::cli
