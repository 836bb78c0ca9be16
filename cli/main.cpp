// The `tightfit` executable: one subcommand per user task. User mistakes end in one line on
// stderr and exit code 2 (invariant 6); internal errors in exit code 1 with "internal error".

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "core/errors.h"
#include "core/machine.h"
#include "models/loader.h"

namespace {
constexpr int kUserErrorExit = 2;
}  // namespace

using namespace tightfit;
using namespace tightfit::cli;

CLI::Validator tightfit::cli::unsigned_integer() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (value.find('-') != std::string::npos)
          return "is " + value + "; it must be an integer >= 0";
        return std::string();
      },
      "UINT");
}

int main(int argc, char** argv) {
  CLI::App app{"tightfit: find how to compress a trained network so it fits a hardware budget"};
  app.require_subcommand(1);
  app.set_version_flag("--version", TIGHTFIT_VERSION);
  // Given before or after the subcommand: thread counts above the hardware threads are errors
  // without it (core/machine.h).
  bool oversubscribe = false;
  app.add_flag("--allow-oversubscribe", oversubscribe,
               "Allow thread counts above this machine's hardware threads");
  std::string input_shape;
  app.add_option("--input-shape", input_shape,
                 "C,H,W of the input a TorchScript --model is traced with (default: the first "
                 "convolution's channels at 224x224)");
  app.fallthrough();

  auto* info = app.add_subcommand("info",
                                  "List a model's layers, shapes, channel groups and "
                                  "decision points");
  std::string info_model;
  bool info_json = false;
  info->add_option("--model", info_model, "Network file or zoo model name")->required();
  info->add_flag("--json", info_json, "Machine-readable output");

  auto* train = app.add_subcommand("train", "Train a zoo model on Fashion-MNIST and save it");
  TrainArgs ta;
  train->add_option("--model", ta.model, "Zoo model name")->capture_default_str();
  train->add_option("--out", ta.out, "Output network file (.tfn)")->required();
  train->add_option("--epochs", ta.opts.epochs, "Passes over the training split")
      ->capture_default_str();
  train->add_option("--optimizer", ta.opts.optimizer, "adam or sgd")->capture_default_str();
  train->add_option("--lr", ta.opts.lr, "Peak learning rate")->capture_default_str();
  train->add_option("--weight-decay", ta.opts.weight_decay, "L2 penalty")->capture_default_str();
  train->add_option("--batch-size", ta.opts.batch_size, "Images per step")->capture_default_str();
  train->add_option("--seed", ta.opts.seed, "Shuffling and dropout seed")
      ->check(unsigned_integer())
      ->capture_default_str();
  train->add_option("--threads", ta.opts.threads, "LibTorch threads")->capture_default_str();
  train->add_option("--max-steps", ta.opts.max_steps, "Stop after this many steps (0: no limit)")
      ->capture_default_str();
  train->add_option("--data-dir", ta.data_dir, "Fashion-MNIST folder")->capture_default_str();
  train->add_flag("--json", ta.json, "Machine-readable result on stdout");

  auto* srch = app.add_subcommand("search", "Search compression policies; write the Pareto front");
  std::string config_path, out_dir, search_data_dir;
  bool search_json = false, search_resume = false;
  srch->add_option("--config", config_path, "Search config (JSON), e.g. examples/demo.json")
      ->required();
  srch->add_option("--out", out_dir, "Output folder for front.json, front.csv, evaluations.jsonl")
      ->required();
  srch->add_option("--data-dir", search_data_dir, "Fashion-MNIST folder (overrides the config)");
  srch->add_flag("--json", search_json, "Print front.json on stdout instead of the table");
  srch->add_flag("--resume", search_resume,
                 "Continue the run journaled in --out (same config) where it stopped");

  auto* rep = app.add_subcommand("report",
                                 "Write report.html (front, charts, per-layer policies) for a "
                                 "search run folder; self-contained, opens offline");
  std::string report_dir;
  rep->add_option("--run", report_dir, "Run folder written by `tightfit search --out`")->required();

  auto* merge = app.add_subcommand("merge",
                                   "Merge the fronts of many search runs of one model and target "
                                   "into one front (front.json, report.html), each member with "
                                   "its run");
  std::vector<std::string> merge_runs;
  std::string merge_out;
  bool merge_json = false;
  merge->add_option("runs", merge_runs, "Run folders written by `tightfit search --out`")
      ->required();
  merge->add_option("--out", merge_out, "Output folder")->required();
  merge->add_flag("--json", merge_json, "Print the merged front.json on stdout");

  auto* comp = app.add_subcommand("compress",
                                  "Apply a policy to a model; write the compressed "
                                  "network and a JSON report");
  CompressArgs ca;
  comp->add_option("--model", ca.model, "Network file or zoo model name")->required();
  comp->add_option("--policy", ca.policy, "Policy JSON {\"keep\": {...}, \"weight_bits\": {...}}")
      ->required();
  comp->add_option("--out", ca.out, "Output folder (compressed.tfn, report.json)")->required();
  comp->add_option("--channel-multiple", ca.channel_multiple, "Round kept channels to this")
      ->capture_default_str();
  comp->add_option("--data-dir", ca.data_dir, "Fashion-MNIST folder")->capture_default_str();
  comp->add_option("--calibration-batches", ca.calibration_batches,
                   "Training batches for data-driven criteria and activation ranges")
      ->capture_default_str();
  comp->add_option("--calibration-batch-size", ca.calibration_batch_size, "Images per batch")
      ->capture_default_str();
  comp->add_option("--bn-batches", ca.bn_batches,
                   "Training batches to re-estimate BN statistics before the test accuracy")
      ->capture_default_str();
  comp->add_option("--seed", ca.seed, "Calibration sampling, random criterion")
      ->check(unsigned_integer())
      ->capture_default_str();
  comp->add_flag("--no-eval", ca.no_eval, "Skip the test-set accuracy");
  comp->add_flag("--json", ca.json, "Print the report on stdout");

  auto* meas = app.add_subcommand("measure",
                                  "Measure a model's latency on a target (optionally "
                                  "compressed by a policy)");
  MeasureArgs ma;
  meas->add_option("--model", ma.model, "Network file or zoo model name")->required();
  meas->add_option("--policy", ma.policy, "Policy JSON applied first");
  meas->add_option("--target", ma.target, "Target name")->capture_default_str();
  meas->add_option("--precision", ma.precision, "fp32 or int8 (what the target runs)")
      ->capture_default_str();
  meas->add_option("--threads", ma.threads, "Threads, fixed and recorded")->capture_default_str();
  meas->add_option("--batch", ma.batch, "Images per run")->capture_default_str();
  meas->add_option("--seed", ma.seed, "Random input and calibration seed")
      ->check(unsigned_integer())
      ->capture_default_str();
  meas->add_option("--data-dir", ma.data_dir, "Fashion-MNIST folder (calibration, if needed)");
  meas->add_option("--steps", ma.steps,
                   "cpu-onednn: also time each engine step and list the N slowest (0: none)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  meas->add_flag("--json", ma.json, "Machine-readable result on stdout");

  auto* prof = app.add_subcommand("profile",
                                  "Build a latency lookup table for a model and search "
                                  "space on a target; --check N tests it");
  ProfileArgs pa;
  prof->add_option("--model", pa.model, "Network file or zoo model name")->required();
  prof->add_option("--target", pa.target, "Target name")->capture_default_str();
  prof->add_option("--precision", pa.precision, "Precision the target runs")->capture_default_str();
  prof->add_option("--space", pa.space,
                   "Search config or space JSON (keep, channel_multiple: a number or \"auto\")");
  prof->add_option("--out", pa.out, "Latency table JSON (resumed when it exists)")->required();
  prof->add_option("--threads", pa.threads, "Threads, fixed and recorded")->capture_default_str();
  prof->add_option("--batch", pa.batch, "Images per run")->capture_default_str();
  prof->add_option("--min-time-ms", pa.min_time_ms, "Timed time per layer configuration")
      ->capture_default_str();
  prof->add_option("--calibration-points", pa.calibration_points,
                   "Whole networks measured to calibrate the table: the uncompressed, the most "
                   "compressed and the smallest fp32 one, then random policies")
      ->capture_default_str();
  prof->add_option("--check", pa.check, "Random policies measured to check the prediction")
      ->capture_default_str();
  prof->add_option("--curves", pa.curves,
                   "Layers (the largest) timed vs output channel count first, to find the "
                   "target's preferred channel multiple (0: none; needed by "
                   "\"channel_multiple\": \"auto\")")
      ->capture_default_str();
  prof->add_option("--seed", pa.seed, "Random policies and input")
      ->check(unsigned_integer())
      ->capture_default_str();
  prof->add_flag("--json", pa.json, "Machine-readable result on stdout");

  MetapruneArgs mp;
  auto* metaprune = add_metaprune_command(app, mp);
  FinetuneArgs fa;
  fa.opts.epochs = 1;
  fa.opts.optimizer = "sgd";
  fa.opts.lr = 0.01;
  auto* finetune = add_finetune_command(app, fa);
  FidelityArgs fid;
  auto* fidelity = add_fidelity_command(app, fid);
  ExportArgs ea;
  auto* exp = add_export_command(app, ea);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tightfit: error: %s; see `tightfit %s--help`\n", e.what(),
                 app.get_subcommands().empty()
                     ? ""
                     : (app.get_subcommands().front()->get_name() + " ").c_str());
    return kUserErrorExit;
  }

  allow_oversubscribe(oversubscribe);
  try {
    if (!input_shape.empty())
      models::set_import_input_shape(models::parse_input_shape(input_shape, "--input-shape"));
    if (*info) return cmd_info(info_model, info_json);
    if (*train) return cmd_train(ta);
    if (*comp) return cmd_compress(ca);
    if (*meas) return cmd_measure(ma);
    if (*prof) return cmd_profile(pa);
    if (*metaprune) return cmd_metaprune(mp);
    if (*finetune) return cmd_finetune(fa);
    if (*fidelity) return cmd_fidelity(fid);
    if (*exp) return cmd_export(ea);
    if (*rep) return cmd_report(report_dir);
    if (*merge) return cmd_merge(merge_runs, merge_out, merge_json);
    if (*srch) return cmd_search(config_path, out_dir, search_json, search_data_dir, search_resume);
  } catch (const InputError& e) {
    std::fprintf(stderr, "tightfit: error: %s\n", e.what());
    return kUserErrorExit;
  } catch (const std::filesystem::filesystem_error& e) {
    std::fprintf(stderr, "tightfit: error: %s; check the path and its permissions\n", e.what());
    return kUserErrorExit;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr,
                 "tightfit: error: out of memory; use a smaller batch, network or data set, or "
                 "a machine with more memory\n");
    return kUserErrorExit;
  } catch (const std::exception& e) {
    const std::string what = without_backtrace(e.what());
    // LibTorch's allocator reports a failed allocation as its own error type, not bad_alloc.
    if (what.find("can't allocate memory") != std::string::npos) {
      const size_t from = what.find("you tried"), to = what.find("bytes", from);
      const std::string asked = from == std::string::npos || to == std::string::npos
                                    ? ""
                                    : what.substr(from, to + 5 - from);
      std::fprintf(stderr, "tightfit: error: out of memory%s; use a smaller batch or network\n",
                   asked.empty() ? "" : (" (" + asked + ")").c_str());
      return kUserErrorExit;
    }
    std::fprintf(stderr, "tightfit: internal error: %s\n", what.c_str());
    return 1;
  }
  return 0;
}
