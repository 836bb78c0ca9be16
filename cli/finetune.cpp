// `tightfit finetune`: applies a policy, then fine-tunes the compressed network on the training
// split so it keeps what the policy made of it (pruned weights stay zero, quantized layers train
// through fake-quant and end on the policy's quantizer), optionally distilled from the
// uncompressed network, and reports the test accuracy before (BN recalibrated, as `tightfit
// compress` reports it) and after.

#include "evaluators/finetune.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "core/errors.h"
#include "core/json.h"
#include "core/machine.h"
#include "evaluators/bn_recal.h"
#include "graph/builder.h"
#include "graph/executor.h"
#include "graph/serialize.h"
#include "search/session.h"
#include "targets/target.h"

namespace tightfit::cli {

CLI::App* add_finetune_command(CLI::App& app, FinetuneArgs& a) {
  auto* cmd = app.add_subcommand(
      "finetune",
      "Apply a policy and fine-tune the compressed network (masks kept, quantized layers "
      "through fake-quant, optional distillation); test accuracy before and after");
  cmd->add_option("--model", a.model, "Network file or zoo model name")->required();
  cmd->add_option("--policy", a.policy, "Policy JSON file")->required();
  cmd->add_option("--out", a.out, "Output folder (finetuned.tfn, report.json)")->required();
  cmd->add_option("--epochs", a.opts.epochs, "Passes over the training split")
      ->capture_default_str();
  cmd->add_option("--max-steps", a.opts.max_steps, "Stop after this many steps (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--optimizer", a.opts.optimizer, "sgd or adam")->capture_default_str();
  cmd->add_option("--lr", a.opts.lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--batch-size", a.opts.batch_size, "Images per step")->capture_default_str();
  cmd->add_flag("--distill", a.distill, "Distil from the uncompressed network (soft targets)");
  cmd->add_flag("--scratch", a.scratch,
                "Train the compressed architecture from fresh weights (seeded by --seed), as "
                "MetaPruning retrains its winners, instead of from the pruned ones");
  cmd->add_option("--temperature", a.temperature, "Distillation temperature")
      ->capture_default_str();
  cmd->add_option("--distill-weight", a.distill_weight,
                  "Share of the loss from the teacher's soft targets")
      ->capture_default_str();
  cmd->add_option("--channel-multiple", a.channel_multiple, "Round kept channels to this")
      ->capture_default_str();
  cmd->add_option("--bn-batches", a.bn_batches,
                  "Training batches to re-estimate BN statistics before the 'before' accuracy")
      ->capture_default_str();
  cmd->add_option("--seed", a.opts.seed, "Shuffling, calibration sampling")
      ->check(unsigned_integer())
      ->capture_default_str();
  cmd->add_option("--threads", a.opts.threads, "LibTorch threads")->capture_default_str();
  cmd->add_option("--data-dir", a.data_dir, "Fashion-MNIST folder")->capture_default_str();
  cmd->add_flag("--json", a.json, "Machine-readable result on stdout");
  return cmd;
}

int cmd_finetune(const FinetuneArgs& a) {
  // Every user mistake is found before the data set is loaded.
  search::Session session(
      search::policy_command_config(a.model, a.data_dir, a.channel_multiple, a.opts.seed));
  const graph::Network& net = session.net;
  const auto policy = policies::Policy::from_json(read_json_file(a.policy), a.policy);
  policies::validate(policy, net);
  if (a.opts.epochs < 1 || a.opts.max_steps < 0)
    throw ConfigError("--epochs must be >= 1 and --max-steps >= 0");
  check_threads(a.opts.threads, "--threads");
  targets::check_batch_fits(net, a.opts.batch_size, "--batch-size");
  if (a.distill && (!(a.temperature > 0) || !(a.distill_weight >= 0 && a.distill_weight <= 1)))
    throw ConfigError("--temperature must be > 0 and --distill-weight in [0, 1]");
  if (a.opts.optimizer != "sgd" && a.opts.optimizer != "adam")
    throw ConfigError("--optimizer is '" + a.opts.optimizer + "'; valid: sgd, adam");
  std::filesystem::create_directories(a.out);
  const auto out = std::filesystem::path(a.out);

  // Calibration batches only when the policy reads data (criteria, activation ranges).
  session.load_data(policies::needs_calibration(policy) ? evaluators::kCalibrationBatches : 0);
  const datasets::Split& data = session.data;
  session.apply_opts.seed = a.opts.seed;
  auto c = session.apply(policy);
  if (a.scratch) graph::reinitialize(c.net, a.opts.seed);
  double before = 0;
  {
    graph::Executor ex(c.net);
    evaluators::recalibrate_bn(ex, data, a.bn_batches, 128, a.opts.seed);
    before = models::evaluate(ex, data.test, data.mean, data.std).accuracy;
  }
  std::fprintf(stderr, "[finetune] %s: test accuracy %.4f as %s; training %d epoch(s)%s\n",
               a.model.c_str(), before, a.scratch ? "re-initialized" : "compressed", a.opts.epochs,
               a.distill ? " with distillation" : "");

  models::TrainOptions opts = a.opts;
  if (a.distill) {
    opts.teacher = &net;
    opts.distill_temperature = a.temperature;
    opts.distill_weight = a.distill_weight;
  }
  const auto r = evaluators::finetune_compressed(c, data, opts, a.opts.seed);
  graph::Network& tuned = c.net;
  tuned.meta()["finetune_epochs"] = std::to_string(a.opts.epochs);
  tuned.meta()["test_accuracy"] = std::to_string(r.test_accuracy);
  graph::save_network(tuned, (out / "finetuned.tfn").string());

  nlohmann::json report = {
      {"model", a.model},
      {"policy", policy.to_json()},
      {"channel_multiple", a.channel_multiple},
      {"test_accuracy_before", before},
      {"test_accuracy_after", r.test_accuracy},
      {"validation_accuracy_after", r.validation_accuracy},
      {"scratch", a.scratch},
      {"before_note", std::string(a.scratch ? "fresh weights (--scratch), " : "") +
                          "BN statistics re-estimated on " + std::to_string(a.bn_batches) +
                          " training batches, no training"},
      {"training",
       {{"epochs", a.opts.epochs},
        {"steps", r.steps},
        {"optimizer", a.opts.optimizer},
        {"lr", a.opts.lr},
        {"batch_size", a.opts.batch_size},
        {"distill", a.distill},
        {"temperature", a.temperature},
        {"distill_weight", a.distill_weight},
        {"train_loss", r.train_loss},
        {"seconds", r.seconds}}},
      {"seed", a.opts.seed},
      {"threads", a.opts.threads},
      {"context", targets::machine_context()}};
  {
    std::ofstream f(out / "report.json");
    f << report.dump(2) << "\n";
  }
  if (a.json) {
    std::cout << report.dump(2) << "\n";
    return 0;
  }
  std::printf("%s: test accuracy %.4f -> %.4f after %lld steps in %.0f s -> %s\n", a.model.c_str(),
              before, r.test_accuracy, static_cast<long long>(r.steps), r.seconds,
              (out / "finetuned.tfn").c_str());
  return 0;
}

}  // namespace tightfit::cli
