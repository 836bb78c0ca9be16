// `tightfit fidelity`: how well accuracy proxies rank candidates. Draws --samples policies from a
// search config's space, scores each with the proxies and with a longer fine-tune (the
// reference), and reports Kendall's tau and Spearman's rho per proxy (search/fidelity.h).

#include "search/fidelity.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "core/errors.h"

namespace tightfit::cli {

CLI::App* add_fidelity_command(CLI::App& app, FidelityArgs& a) {
  auto* cmd = app.add_subcommand(
      "fidelity",
      "Rank agreement (Kendall's tau, Spearman's rho) of accuracy proxies with a longer "
      "fine-tune, on policies drawn from a search config's space");
  cmd->add_option("--config", a.config, "Search config (model, data, space, evaluator, seed)")
      ->required();
  cmd->add_option("--samples", a.samples, "Policies drawn")->capture_default_str();
  cmd->add_option("--proxies", a.proxies,
                  "Comma-separated proxies (evaluator names or 'predictor'); default: the "
                  "config's evaluator. The config's evaluator section configures its own name.");
  cmd->add_option("--reference-steps", a.reference_steps,
                  "Fine-tuning steps of the reference (with distillation)")
      ->capture_default_str();
  cmd->add_option("--out", a.out, "Write the full result (every sample) as JSON here");
  cmd->add_flag("--json", a.json, "Machine-readable result on stdout");
  return cmd;
}

int cmd_fidelity(const FidelityArgs& a) {
  const auto config = search::SearchConfig::load(a.config);
  search::FidelityOptions opts;
  opts.samples = a.samples;
  if (a.reference_steps < 1)
    throw ConfigError("--reference-steps must be >= 1 (the reference is a fine-tune)");
  opts.reference.steps = a.reference_steps;
  std::stringstream in(a.proxies);
  for (std::string name; std::getline(in, name, ',');) {
    if (name.empty()) continue;
    opts.proxies.push_back(
        {name, name == config.evaluator ? config.evaluator_config : nlohmann::json::object()});
  }
  if (!a.out.empty()) {
    const auto parent = std::filesystem::path(a.out).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    if (!std::ofstream(a.out, std::ios::app))
      throw InputError("cannot write '" + a.out + "': check the path");
  }
  const auto r = search::measure_fidelity(config, opts);
  const auto j = r.to_json();
  if (!a.out.empty()) std::ofstream(a.out) << j.dump(2) << "\n";
  if (a.json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("%s", r.table().c_str());
  return 0;
}

}  // namespace tightfit::cli
