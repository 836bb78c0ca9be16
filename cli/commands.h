#pragma once
// The `tightfit` subcommands, one file each. Each returns the process exit code; user mistakes
// are thrown as InputError/ConfigError and turned into one line and exit code 2 by main.cpp.

#include <cstdint>
#include <string>
#include <vector>

#include "datasets/fashion_mnist.h"
#include "evaluators/pruningnet.h"
#include "graph/network.h"
#include "models/train.h"
#include "policies/compress.h"

namespace CLI {
class App;
class Validator;
}  // namespace CLI

namespace tightfit::cli {

/// An option check for seeds and other unsigned integers: "-1" is refused ("--seed: is -1; it
/// must be an integer >= 0") instead of wrapping around to 2^64 - 1.
CLI::Validator unsigned_integer();

/// A model argument: a network file, or a zoo model name (random weights).

int cmd_info(const std::string& model, bool json);

struct TrainArgs {
  std::string model = "vgg_small";
  std::string out;
  std::string data_dir = datasets::kFashionMnistDir;
  models::TrainOptions opts;
  bool json = false;
};
int cmd_train(const TrainArgs& a);

int cmd_search(const std::string& config_path, const std::string& out, bool json,
               const std::string& data_dir, bool resume);

/// Writes run_dir/report.html from the run's front.json and evaluations.jsonl.
int cmd_report(const std::string& run_dir);
/// `tightfit merge RUN... --out DIR`: the fronts of many runs as one (search/merge.h).
int cmd_merge(const std::vector<std::string>& runs, const std::string& out, bool json);

struct CompressArgs {
  std::string model, policy, out, data_dir = datasets::kFashionMnistDir;
  int64_t channel_multiple = 1;
  int64_t calibration_batches = 4;  ///< training batches for criteria / activation ranges
  int64_t calibration_batch_size = 64;
  int64_t bn_batches = 10;  ///< BN recalibration before the test accuracy
  uint64_t seed = 1;
  bool no_eval = false;
  bool json = false;
};
int cmd_compress(const CompressArgs& a);

struct MeasureArgs {
  std::string model, policy, target = "cpu-libtorch", precision = "fp32", data_dir;
  int threads = 1;
  int64_t batch = 1;
  uint64_t seed = 1;
  int steps = 0;  ///< cpu-onednn: list the slowest engine steps
  bool json = false;
};
int cmd_measure(const MeasureArgs& a);

struct ProfileArgs {
  std::string model, target = "cpu-onednn", precision = "fp32", space, out;
  int threads = 1;
  int64_t batch = 1;
  uint64_t seed = 1;
  double min_time_ms = 100;    ///< per layer configuration
  int calibration_points = 6;  ///< whole networks measured to calibrate the sum
  int check = 0;               ///< random policies to check the predictor on
  int curves = 3;  ///< layers timed vs channel count for the preferred multiple (0: none)
  bool json = false;
};
int cmd_profile(const ProfileArgs& a);

struct MetapruneArgs {
  std::string model, out, init, data_dir = datasets::kFashionMnistDir;
  evaluators::PruningNetConfig config;
  evaluators::PruningNetTrainOptions opts;
  bool json = false;
};
/// Adds `metaprune` (with its `train` subcommand) to `app`, its options bound to `a`.
CLI::App* add_metaprune_command(CLI::App& app, MetapruneArgs& a);
/// `tightfit metaprune train`: trains a PruningNet for a model and writes it.
int cmd_metaprune(const MetapruneArgs& a);

struct FinetuneArgs {
  std::string model, policy, out, data_dir = datasets::kFashionMnistDir;
  int64_t channel_multiple = 1;
  int64_t bn_batches = 10;  ///< BN recalibration before the "before" test accuracy
  bool distill = false;
  bool scratch = false;  ///< the compressed architecture re-initialized, trained from scratch
  double temperature = 4.0;
  double distill_weight = 0.7;
  models::TrainOptions opts;  ///< epochs, lr, optimizer, batch size, seed, threads
  bool json = false;
};
/// Adds `finetune` to `app`, its options bound to `a`.
CLI::App* add_finetune_command(CLI::App& app, FinetuneArgs& a);
/// `tightfit finetune`: applies a policy, fine-tunes the compressed network (masks kept,
/// quantized layers through fake-quant, optionally distilled from the original) and reports the
/// test accuracy before and after.
int cmd_finetune(const FinetuneArgs& a);

struct ExportArgs {
  std::string model, policy, run, out, data_dir = datasets::kFashionMnistDir;
  int64_t member = -1;  ///< with --run: the front member (its evaluation index)
  int64_t channel_multiple = 1;
  int64_t calibration_batches = 2;
  uint64_t seed = 1;
  bool int8 = false;  ///< layers cpu-libtorch runs in int8 as LibTorch's quantized ops
  bool json = false;
};
/// Adds `export` to `app`, its options bound to `a`.
CLI::App* add_export_command(CLI::App& app, ExportArgs& a);
/// `tightfit export`: a network (compressed by a policy, or a search's front member) written as
/// TorchScript with its reduced shapes, for torch.jit.load in Python or C++.
int cmd_export(const ExportArgs& a);

struct FidelityArgs {
  std::string config, proxies, out;
  int64_t samples = 30;
  int64_t reference_steps = 300;
  bool json = false;
};
/// Adds `fidelity` to `app`, its options bound to `a`.
CLI::App* add_fidelity_command(CLI::App& app, FidelityArgs& a);
/// `tightfit fidelity`: Kendall's tau and Spearman's rho of proxies against a longer fine-tune.
int cmd_fidelity(const FidelityArgs& a);

}  // namespace tightfit::cli
