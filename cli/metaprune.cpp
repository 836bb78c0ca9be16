// `tightfit metaprune train`: trains a PruningNet (evaluators/pruningnet.h, MetaPruning) for a
// model on Fashion-MNIST and writes it; the `pruningnet` evaluator then scores search candidates
// with generated weights. Every mistake the user can make (model, options, a PruningNet of
// another network given to --init) is checked before the data set is loaded.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "core/errors.h"
#include "core/json.h"
#include "core/machine.h"
#include "evaluators/pruningnet.h"
#include "models/loader.h"
#include "targets/target.h"

namespace tightfit::cli {

namespace {
/// Steps averaged for the reported first and last loss: a tenth of the run, at most 50.
int64_t loss_window(int64_t steps) {
  constexpr int64_t kMaxWindow = 50;
  return std::clamp<int64_t>(steps / 10, 1, kMaxWindow);
}
}  // namespace

CLI::App* add_metaprune_command(CLI::App& app, MetapruneArgs& a) {
  auto* metaprune =
      app.add_subcommand("metaprune",
                         "MetaPruning: train a PruningNet that generates weights for any channel "
                         "configuration (the `pruningnet` evaluator scores candidates with it)");
  metaprune->require_subcommand(1);
  auto* train = metaprune->add_subcommand("train", "Train a PruningNet for a model and save it");
  train->add_option("--model", a.model, "Network file or zoo model name")->required();
  train->add_option("--out", a.out, "Output PruningNet file (e.g. resnet20.pnet)")->required();
  train->add_option("--steps", a.opts.steps, "Training steps (one random configuration each)")
      ->capture_default_str();
  train->add_option("--lr", a.opts.lr, "Peak learning rate (Adam)")->capture_default_str();
  train->add_option("--batch-size", a.opts.batch_size, "Images per step")->capture_default_str();
  train->add_option("--seed", a.opts.seed, "Configurations, shuffling and initialization")
      ->check(unsigned_integer())
      ->capture_default_str();
  train->add_option("--threads", a.opts.threads, "LibTorch threads")->capture_default_str();
  train->add_option("--hidden", a.config.hidden, "Hidden units of each layer's generator")
      ->capture_default_str();
  train
      ->add_option("--channel-multiple", a.config.channel_multiple,
                   "Round sampled channel counts to this multiple")
      ->capture_default_str();
  train
      ->add_option("--sampling", a.config.sampling,
                   "How a step draws its configuration: banded (overall widths spread evenly, "
                   "layers within --band positions of a random centre) or layerwise (each layer "
                   "independently, the paper)")
      ->capture_default_str();
  train->add_option("--band", a.config.band, "banded: positions a layer strays from the centre")
      ->capture_default_str();
  train->add_flag("--sandwich", a.config.sandwich,
                  "Every step also trains the full-width network on the same batch (twice the "
                  "cost of a step)");
  train->add_option(
      "--init", a.init,
      "Continue training this PruningNet file (same network; its --hidden, "
      "--channel-multiple, --sampling and --sandwich are kept; give another --seed for new "
      "configurations)");
  train->add_option("--data-dir", a.data_dir, "Fashion-MNIST folder")->capture_default_str();
  train->add_flag("--json", a.json, "Machine-readable result on stdout");
  return metaprune;
}

int cmd_metaprune(const MetapruneArgs& a) {
  if (a.opts.steps < 1)
    throw ConfigError("--steps is " + std::to_string(a.opts.steps) +
                      "; a PruningNet needs at least one training step (e.g. --steps 1000)");
  if (a.opts.batch_size < 1 || !(a.opts.lr > 0))
    throw ConfigError("--batch-size must be >= 1 and --lr > 0");
  check_threads(a.opts.threads, "--threads");
  if (a.config.sampling != "banded" && a.config.sampling != "layerwise")
    throw ConfigError("--sampling is '" + a.config.sampling +
                      "'; use banded (widths spread evenly) or layerwise (the paper)");
  if (a.config.band < 0)
    throw ConfigError("--band is " + std::to_string(a.config.band) + "; it must be >= 0 (e.g. 2)");
  const graph::Network net = models::load_model(a.model);
  std::unique_ptr<evaluators::PruningNet> pruningnet;
  int64_t earlier_steps = 0;
  if (!a.init.empty()) {
    pruningnet =
        std::make_unique<evaluators::PruningNet>(evaluators::PruningNet::load(a.init, net));
    if (auto it = pruningnet->meta().find("steps"); it != pruningnet->meta().end())
      earlier_steps = std::strtoll(it->second.c_str(), nullptr, 10);  // 0 when unreadable
  } else {
    pruningnet = std::make_unique<evaluators::PruningNet>(net, a.config, a.opts.seed);
  }
  // Fail on an unwritable output before spending minutes on training.
  const auto parent = std::filesystem::path(a.out).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  const auto data = datasets::load_fashion_mnist(a.data_dir);

  const auto& config = pruningnet->config();
  std::fprintf(stderr,
               "[metaprune] PruningNet for %s: %zu decision points, %lld parameters (hidden %lld); "
               "%lld steps of %lld images, lr %g, %d threads\n",
               a.model.c_str(), pruningnet->decision_points().size(),
               static_cast<long long>(pruningnet->num_params()),
               static_cast<long long>(config.hidden), static_cast<long long>(a.opts.steps),
               static_cast<long long>(a.opts.batch_size), a.opts.lr, a.opts.threads);
  const auto r = pruningnet->train(data, a.opts);
  const int64_t window = loss_window(a.opts.steps);
  const double first = r.first_window(window), last = r.last_window(window);

  auto& meta = pruningnet->meta();
  meta["model"] = a.model;
  meta["dataset"] = "fashion-mnist";
  meta["steps"] = std::to_string(earlier_steps + a.opts.steps);
  meta["seed"] = std::to_string(a.opts.seed);
  meta["loss_last"] = std::to_string(last);
  pruningnet->save(a.out);

  nlohmann::json j = {{"command", "metaprune train"},
                      {"model", a.model},
                      {"network_hash", pruningnet->network_hash()},
                      {"out", a.out},
                      {"init", a.init},
                      {"steps", a.opts.steps},
                      {"total_steps", earlier_steps + a.opts.steps},
                      {"batch_size", a.opts.batch_size},
                      {"lr", a.opts.lr},
                      {"seed", a.opts.seed},
                      {"threads", a.opts.threads},
                      {"config", config.to_json()},
                      {"decision_points", pruningnet->decision_points().size()},
                      {"params", pruningnet->num_params()},
                      {"seconds", r.seconds},
                      {"steps_per_second", static_cast<double>(a.opts.steps) / r.seconds},
                      {"loss_window", window},
                      {"loss_first_window", first},
                      {"loss_last_window", last},
                      {"context", targets::machine_context()}};
  j["context"]["tightfit"] = TIGHTFIT_VERSION;
  if (a.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf(
        "%s: PruningNet trained for %lld steps in %.0f s (%.1f steps/s); loss %.4f (first %lld "
        "steps) -> %.4f (last %lld) -> %s\n",
        a.model.c_str(), static_cast<long long>(a.opts.steps), r.seconds,
        static_cast<double>(a.opts.steps) / r.seconds, first, static_cast<long long>(window), last,
        static_cast<long long>(window), a.out.c_str());
  }
  return 0;
}

}  // namespace tightfit::cli
