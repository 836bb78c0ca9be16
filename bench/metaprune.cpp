// bench metaprune: MetaPruning's headline comparison (Liu et al., ICCV 2019, Tables 1-2) on one
// trained network: at each FLOPs level, the channel configuration an evolutionary search finds
// against the uniform-width network of the same FLOPs, both trained with the same recipe and
// budget and scored on the full Fashion-MNIST test split.
//   1. proxy        --evaluator pruningnet (MetaPruning): a PruningNet trained for the network
//                   (the space's keep fractions and channel multiple), saved to
//                   <results>/<stem>.pnet; a file there trained for this network with the same
//                   steps, seed and configurations is reused. --evaluator bn-recal (EagleEye):
//                   the L1-pruned weights the finetune recipe starts from, BN re-estimated.
//                   --evaluator finetune: those weights after --proxy-steps distilled steps.
//   2. per level    FLOPs limit = level x the uncompressed network's FLOPs.
//                   uniform: the largest keep fraction on a grid of kUniformGrid steps whose
//                   network (channels_to_keep rounding) stays within the limit.
//                   searched: `evolution` over a pruning-only space (--keep) scored by the proxy,
//                   proposals over the limit rejected before evaluation (max_flops); the most
//                   accurate search candidate within the limit (by the proxy); with
//                   --finalists K, the proxy's top K are each trained by the recipe with the
//                   first --finalist-seeds seeds and the best mean on the validation split is
//                   taken, then trained with the remaining seeds (the test split never chooses).
//                   Latency is not the point: the analytic roofline target costs nothing.
//   3. recipe       finetune: the trained network's weights pruned by L1, SGD (momentum,
//                   warm-up, cosine) for --train-steps; scratch: the same network re-initialized
//                   (Kaiming), trained the same steps. Each network is trained --train-seeds
//                   times (seeds --seed, --seed + 1, ...: batches and initialization), both
//                   sides with the same seeds; the table shows the mean and the spread.
//   4. ceiling      (--uncompressed, on by default) the uncompressed network trained by the same
//                   recipe and seeds, MetaPruning's 1.0x row: no level can be expected above
//                   it, so "room" (it minus uniform width) says how much a search can gain.
// Prints a table in MetaPruning's form and writes {"levels", "targets", "baseline",
// "uncompressed", "pruningnet", "context"}.

#include <ATen/Parallel.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <random>
#include <sstream>

#include "bench/bench_util.h"
#include "core/errors.h"
#include "core/stats.h"
#include "core/timing.h"
#include "evaluators/cost.h"
#include "evaluators/pruningnet.h"
#include "graph/builder.h"
#include "graph/executor.h"
#include "graph/serialize.h"
#include "models/train.h"
#include "policies/compress.h"
#include "search/config.h"
#include "search/controller.h"
#include "search/space.h"

using namespace tightfit;

namespace {

struct Args : bench::CommonArgs {
  Args() {
    // MetaPruning's own table is MobileNets trained from scratch. ResNet-20's stages cost the
    // same FLOPs each, which leaves uniform width little to lose: from scratch its uncompressed
    // network is 1.3 points above uniform width at 25% (MobileNetV2-small: 4.3); --zoo resnet20
    // --model runs/models/resnet20.tfn runs it.
    model = "runs/models/mobilenetv2_small.tfn";
    zoo = "mobilenetv2_small";
    out = "bench/results/metaprune.json";
    results = "bench/results/runs";
    threads = 2;  // LibTorch threads of PruningNet training, evaluations and training
  }
  std::string levels = "0.25,0.5,0.75";
  int64_t pruningnet_steps = 600;
  // Layerwise sampling (the paper) rarely trains the widest networks: its 600-step PruningNet
  // scored the full-width network at 86.4, below the 75%-FLOPs candidates (88.1-88.45).
  std::string pruningnet_sampling = "banded";
  int64_t pruningnet_band = 2;
  bool pruningnet_sandwich = false;  // also train the full-width network every step
  int64_t evaluations = 80;
  int64_t train_steps = 300;
  // Each network trained this many times; accuracies averaged. At 75% one seed's spread (0.6
  // points) exceeded the uncompressed network's lead over uniform width (0.4) with 3 seeds.
  int64_t train_seeds = 5;
  int64_t finalists = 4;       // the proxy's top-k, each trained and chosen on validation
  int64_t finalist_seeds = 1;  // training seeds of each finalist; the chosen one gets the rest
  bool uncompressed = true;    // the uncompressed network trained the same way: the levels' ceiling
  std::string recipe = "scratch";
  std::string evaluator = "pruningnet";  // the search's proxy: pruningnet, bn-recal or finetune
  int64_t proxy_steps = 30;              // finetune proxy: distilled SGD steps per candidate
  // Sixteenths, as MetaPruning's own grid is fine (3% steps): on eighths the searched networks
  // left 5-7% of the limit's FLOPs unused at 50% and 75% while uniform width (kUniformGrid) uses
  // 99-100%.
  std::vector<double> keep = {0.25,   0.3125, 0.375,  0.4375, 0.5,    0.5625, 0.625,
                              0.6875, 0.75,   0.8125, 0.875,  0.9375, 1.0};
  double lr = 0;  // 0: the recipe's (kFinetuneLr, kScratchLr)
  int64_t channel_multiple = 1;
  int64_t validation_images = 2000;
  int64_t bn_batches = 5;
};

constexpr int kTrainEpochs = 2;  // --model missing: trained as search_quality trains it
/// Uniform keep fractions tried: k / kUniformGrid; finer than any rounding step of these nets.
constexpr int64_t kUniformGrid = 256;
// Generations of the search; each has at least kMinPopulation members.
constexpr int64_t kMaxGenerations = 5;
constexpr int64_t kMinPopulation = 16;
// SGD peak learning rates: a short fine-tune of trained weights (as the finetune evaluator), and
// training re-initialized weights in the same few steps.
constexpr double kFinetuneLr = 0.01;
constexpr double kScratchLr = 0.05;
constexpr int64_t kTrainBatch = 128;
constexpr int kFloatBits = 32;  // weight bits of a policy that does not quantize
constexpr int64_t kMaxLossWindow =
    50;  // PruningNet loss averaged over a tenth of its steps, at most
// The target: at the smallest MetaPruning level, searched beats uniform by >= 1 point.
constexpr double kTargetLevel = 0.25;
constexpr double kTargetGainPoints = 1.0;

std::vector<double> parse_levels(const std::string& s) {
  std::vector<double> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (item.empty()) continue;
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (end == item.c_str() || *end != '\0' || !(v > 0 && v < 1))
      throw ConfigError("--levels: '" + item +
                        "' is not a FLOPs fraction in (0, 1); e.g. --levels 0.25,0.5,0.75");
    out.push_back(v);
  }
  if (out.empty()) throw ConfigError("--levels is empty; e.g. --levels 0.25,0.5,0.75");
  return out;
}

/// The `evolution` section for `n` evaluations under `max_flops`: as many generations as fit
/// with kMinPopulation members (1..kMaxGenerations), a quarter of each generation as parents.
nlohmann::json evolution_section(int64_t n, int64_t max_flops) {
  const int64_t generations = std::clamp<int64_t>(n / kMinPopulation, 1, kMaxGenerations);
  const int64_t population = std::max<int64_t>(2, n / generations);
  const int64_t mutations = population / 2;
  return {{"name", "evolution"},
          {"population", population},
          {"parents", std::max<int64_t>(2, population / 4)},
          {"mutations", mutations},
          {"crossovers", population - mutations},
          {"iterations", generations},
          {"max_flops", max_flops}};
}

int64_t flops_of(const graph::Network& net, const policies::Policy& policy,
                 const policies::ApplyOptions& opts) {
  return evaluators::count_cost(policies::apply(net, policy, opts)).flops;
}

struct Uniform {
  double keep = 0;
  int64_t flops = 0;
};

/// The largest keep fraction k / kUniformGrid whose uniform network has at most `max_flops`.
/// Kept channels never decrease as the fraction grows, so FLOPs are monotone and a bisection
/// over the grid finds it.
std::optional<Uniform> uniform_within(const graph::Network& net, const search::SearchSpace& space,
                                      int64_t max_flops, const policies::ApplyOptions& opts) {
  auto flops_at = [&](int64_t k) {
    return flops_of(net, space.uniform(static_cast<double>(k) / kUniformGrid, kFloatBits), opts);
  };
  if (flops_at(1) > max_flops) return std::nullopt;
  int64_t lo = 1, hi = kUniformGrid;  // flops_at(lo) fits; search the last k that does
  if (flops_at(hi) <= max_flops) lo = hi;
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    (flops_at(mid) <= max_flops ? lo : hi) = mid;
  }
  return Uniform{static_cast<double>(lo) / kUniformGrid, flops_at(lo)};
}

double test_accuracy(const graph::Network& net, const datasets::Split& data) {
  graph::Executor ex(net);
  return models::evaluate(ex, data.test, data.mean, data.std).accuracy;
}

/// A network trained by the recipe once per training seed (--seed, --seed + 1, ...).
struct Trained {
  graph::Network pruned;           ///< before training: the policy applied by L1 ranking
  double accuracy = 0;             ///< full test split, mean over the training seeds
  std::vector<double> accuracies;  ///< per training seed
  double validation = 0;           ///< validation split, mean over the training seeds
  std::vector<double> validation_accuracies;
  int64_t flops = 0;
  std::map<std::string, int64_t> kept_channels;
  double seconds = 0;
};

/// `policy` applied to `net` with L1 channel ranking, as both sides are trained.
policies::CompressedNetwork pruned_by_l1(const graph::Network& net, const policies::Policy& policy,
                                         const policies::ApplyOptions& apply_opts) {
  policies::Policy p = policy;
  p.criterion = "l1";
  return policies::apply(net, p, apply_opts);
}

struct Scores {
  double validation = 0;
  double test = 0;
};

/// A copy of `pruned` trained by the recipe with `seed` (initialization and batches); its
/// accuracy on the validation and the test split.
Scores train_once(graph::Network net, const datasets::Split& data, const Args& a, uint64_t seed) {
  if (a.recipe == "scratch") graph::reinitialize(net, seed);
  if (a.train_steps > 0) {
    models::TrainOptions o;
    o.epochs = 1 << 20;  // bounded by max_steps
    o.max_steps = a.train_steps;
    o.batch_size = kTrainBatch;
    o.optimizer = "sgd";
    o.lr = a.lr > 0 ? a.lr : (a.recipe == "scratch" ? kScratchLr : kFinetuneLr);
    o.seed = seed;
    o.threads = a.threads;
    o.progress = false;
    o.final_evaluation = false;
    models::train_model(net, data, o);
  }
  graph::Executor ex(net);
  return {models::evaluate(ex, data.validation, data.mean, data.std).accuracy,
          models::evaluate(ex, data.test, data.mean, data.std).accuracy};
}

/// Trains `t.pruned` by the recipe with the training seeds it has not had yet, up to `seeds`,
/// each run scored on the validation and the test split.
void train_seeds(Trained& t, int64_t seeds, const datasets::Split& data, const Args& a) {
  const auto t0 = Clock::now();
  for (auto k = static_cast<int64_t>(t.accuracies.size()); k < seeds; ++k) {
    const Scores s = train_once(t.pruned, data, a, a.seed + static_cast<uint64_t>(k));
    t.validation_accuracies.push_back(s.validation);
    t.accuracies.push_back(s.test);
  }
  t.accuracy = tightfit::mean(t.accuracies);
  t.validation = tightfit::mean(t.validation_accuracies);
  t.seconds += seconds_since(t0);
}

/// `policy` applied to `net` (L1 channel ranking) and trained with the first `seeds` seeds.
Trained train_and_score(const graph::Network& net, const policies::Policy& policy,
                        const datasets::Split& data, const Args& a,
                        const policies::ApplyOptions& apply_opts, int64_t seeds) {
  auto pruned = pruned_by_l1(net, policy, apply_opts);
  Trained t;
  t.flops = evaluators::count_cost(pruned).flops;
  t.kept_channels = pruned.kept_channels;
  t.pruned = std::move(pruned.net);
  train_seeds(t, seeds, data, a);
  return t;
}

/// The PruningNet file for `net`: reused when it was trained for this network with these
/// settings, else trained and saved. Returns what the context records about it.
nlohmann::json prepare_pruningnet(const graph::Network& net, const std::string& path, const Args& a,
                                  const datasets::Split& data) {
  evaluators::PruningNetConfig config;
  config.keep = a.keep;
  config.channel_multiple = a.channel_multiple;
  config.sampling = a.pruningnet_sampling;
  config.band = a.pruningnet_band;
  config.sandwich = a.pruningnet_sandwich;
  const std::string hash = evaluators::network_hash(net);
  std::string stale;  // why an existing file is not reused
  if (std::filesystem::exists(path)) {
    try {
      const auto info = evaluators::PruningNet::read_info(path);
      auto meta = [&](const char* key) {
        auto it = info.meta.find(key);
        return it == info.meta.end() ? std::string() : it->second;
      };
      if (info.network_hash != hash)
        stale = "trained for another network";
      else if (info.config.to_json() != config.to_json())
        stale = "trained on other configurations (" + info.config.to_json().dump() + ")";
      else if (meta("steps") != std::to_string(a.pruningnet_steps) ||
               meta("seed") != std::to_string(a.seed))
        stale = "trained for " + meta("steps") + " steps with seed " + meta("seed");
      if (stale.empty()) {
        std::fprintf(stderr, "[bench] reusing PruningNet %s (%s steps)\n", path.c_str(),
                     meta("steps").c_str());
        return {{"path", path},
                {"reused", true},
                {"steps", a.pruningnet_steps},
                {"network_hash", info.network_hash},
                {"params_hash", info.params_hash},
                {"config", info.config.to_json()},
                {"meta", info.meta}};
      }
    } catch (const InputError& e) {
      stale = std::string("unreadable: ") + e.what();
    }
    std::fprintf(stderr, "[bench] %s is %s: training a new one\n", path.c_str(), stale.c_str());
  }
  evaluators::PruningNet pruningnet(net, config, a.seed);
  evaluators::PruningNetTrainOptions opts;
  opts.steps = a.pruningnet_steps;
  opts.seed = a.seed;
  opts.threads = a.threads;
  std::fprintf(stderr, "[bench] training a PruningNet: %lld steps of %lld images, %d threads\n",
               static_cast<long long>(opts.steps), static_cast<long long>(opts.batch_size),
               opts.threads);
  const auto r = pruningnet.train(data, opts);
  const int64_t window = std::clamp<int64_t>(opts.steps / 10, 1, kMaxLossWindow);
  pruningnet.meta()["model"] = a.model;
  pruningnet.meta()["dataset"] = "fashion-mnist";
  pruningnet.meta()["steps"] = std::to_string(opts.steps);
  pruningnet.meta()["seed"] = std::to_string(opts.seed);
  pruningnet.meta()["loss_last"] = std::to_string(r.last_window(window));
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  pruningnet.save(path);
  const auto info = evaluators::PruningNet::read_info(path);
  return {{"path", path},
          {"reused", false},
          {"steps", opts.steps},
          {"seconds", r.seconds},
          {"steps_per_second", static_cast<double>(opts.steps) / r.seconds},
          {"loss_first_window", r.first_window(window)},
          {"loss_last_window", r.last_window(window)},
          {"loss_window", window},
          {"network_hash", info.network_hash},
          {"params_hash", info.params_hash},
          {"config", config.to_json()}};
}

nlohmann::json or_null(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "bench metaprune: MetaPruning (PruningNet + evolution under a FLOPs limit) against "
      "uniform width at the same FLOPs, both trained the same way"};
  Args a;
  bench::CommonHelp common;
  common.model = "Trained network file (trained first when missing)";
  common.zoo = true;
  common.results = "Folder of the PruningNet file and the search runs";
  common.threads = "LibTorch threads (PruningNet, evaluations, training)";
  common.threads_at_least_one = true;
  common.seed = "PruningNet, search and training seed";
  bench::add_common_options(app, a, common);
  app.add_option("--levels", a.levels, "FLOPs levels, fractions of the uncompressed network's")
      ->capture_default_str();
  app.add_option("--pruningnet-sampling", a.pruningnet_sampling,
                 "PruningNet configurations: banded (widths spread evenly) or layerwise (paper)")
      ->capture_default_str();
  app.add_option("--pruningnet-band", a.pruningnet_band,
                 "banded: list positions a layer strays from the step's centre")
      ->capture_default_str();
  app.add_option("--pruningnet-sandwich", a.pruningnet_sandwich,
                 "PruningNet: every step also trains the full-width network")
      ->capture_default_str();
  app.add_option("--pruningnet-steps", a.pruningnet_steps, "PruningNet training steps")
      ->capture_default_str()
      ->check(bench::at_least(1));
  app.add_option("--evaluations", a.evaluations, "Search evaluations per level")
      ->capture_default_str()
      ->check(bench::at_least(1));
  app.add_option("--train-steps", a.train_steps,
                 "Training steps of every searched and uniform network (0: score as cut)")
      ->capture_default_str()
      ->check(bench::at_least(0));
  app.add_option("--train-seeds", a.train_seeds,
                 "Trainings of every searched and uniform network (seeds --seed, --seed + 1, "
                 "...); the table shows the mean")
      ->capture_default_str()
      ->check(bench::at_least(1));
  app.add_option("--finalists", a.finalists,
                 "The proxy's top candidates, each trained by the recipe; the best mean on the "
                 "validation split is the searched network (1: the proxy's best)")
      ->capture_default_str()
      ->check(bench::at_least(1));
  app.add_option("--finalist-seeds", a.finalist_seeds,
                 "Training seeds of each finalist (at most --train-seeds); the chosen one is then "
                 "trained with the rest")
      ->capture_default_str()
      ->check(bench::at_least(1));
  app.add_option("--uncompressed", a.uncompressed,
                 "Also train the uncompressed network by the recipe and seeds (MetaPruning's 1.0x "
                 "row): the most any level can reach, and the room above uniform width")
      ->capture_default_str();
  app.add_option("--recipe", a.recipe,
                 "finetune: from the trained weights (L1-pruned); scratch: re-initialized")
      ->capture_default_str()
      ->check(CLI::IsMember({"finetune", "scratch"}));
  app.add_option("--lr", a.lr, "SGD peak learning rate (0: finetune 0.01, scratch 0.05)")
      ->capture_default_str()
      ->check(bench::at_least(0));
  app.add_option("--evaluator", a.evaluator,
                 "The search's proxy: pruningnet (MetaPruning: PruningNet-generated weights) or "
                 "bn-recal (EagleEye: the L1-pruned weights the finetune recipe starts from, BN "
                 "re-estimated) or finetune (those weights after --proxy-steps distilled steps)")
      ->capture_default_str()
      ->check(CLI::IsMember({"pruningnet", "bn-recal", "finetune"}));
  app.add_option("--proxy-steps", a.proxy_steps,
                 "Fine-tuning steps per candidate of the finetune proxy")
      ->capture_default_str()
      ->check(bench::at_least(1));
  app.add_option("--keep", a.keep,
                 "Keep fractions of the pruning space (and of the PruningNet's configurations)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--channel-multiple", a.channel_multiple,
                 "Kept channels rounded to this multiple (space, PruningNet, uniform)")
      ->capture_default_str()
      ->check(bench::at_least(1));
  app.add_option("--validation-images", a.validation_images,
                 "Validation images the pruningnet evaluator scores per candidate")
      ->capture_default_str()
      ->check(bench::at_least(1));
  app.add_option("--bn-batches", a.bn_batches, "BatchNorm recalibration batches per candidate")
      ->capture_default_str()
      ->check(bench::at_least(0));
  if (const auto rc = bench::parse_args(app, argc, argv)) return *rc;

  try {
    const auto t_bench = Clock::now();
    auto elapsed = [&] { return seconds_since(t_bench); };
    const auto levels = parse_levels(a.levels);
    if (a.finalist_seeds > a.train_seeds)
      throw ConfigError("--finalist-seeds (" + std::to_string(a.finalist_seeds) +
                        ") exceeds --train-seeds (" + std::to_string(a.train_seeds) +
                        "); lower it or raise --train-seeds");
    at::set_num_threads(a.threads);
    const auto data = datasets::load_fashion_mnist();
    const auto net = bench::trained_model(a.model, a.zoo, kTrainEpochs, data, a.threads);
    const std::string stem = std::filesystem::path(a.model).stem().string();
    const std::string pnet_path = a.results + "/" + stem + ".pnet";

    search::SpaceConfig space_config;
    space_config.kind = "pruning";
    space_config.keep = a.keep;
    space_config.weight_bits = {kFloatBits};
    space_config.channel_multiple = a.channel_multiple;
    const search::SearchSpace space(policies::decision_points(net), space_config);
    policies::ApplyOptions apply_opts;
    apply_opts.channel_multiple = a.channel_multiple;
    const int64_t base_flops = flops_of(net, {}, apply_opts);
    const double base_accuracy = test_accuracy(net, data);
    std::fprintf(stderr, "[bench] %s: %.2f MFLOPs, test accuracy %.4f\n", a.model.c_str(),
                 static_cast<double>(base_flops) / 1e6, base_accuracy);

    nlohmann::json pruningnet;  // null unless the search scores with it
    nlohmann::json evaluator = {{"name", a.evaluator},
                                {"bn_batches", a.bn_batches},
                                {"validation_images", a.validation_images},
                                {"threads", a.threads}};
    if (a.evaluator == "pruningnet") {
      pruningnet = prepare_pruningnet(net, pnet_path, a, data);
      std::fprintf(stderr, "[bench] PruningNet ready (%.0f s)\n", elapsed());
      evaluator["path"] = pnet_path;
      evaluator["seed"] = a.seed;
    } else if (a.evaluator == "finetune") {
      evaluator["steps"] = a.proxy_steps;
    }

    nlohmann::json result;
    result["levels"] = nlohmann::json::array();
    nlohmann::json search_context;
    for (double level : levels) {
      const auto max_flops =
          static_cast<int64_t>(std::floor(level * static_cast<double>(base_flops)));
      const int pct = static_cast<int>(std::lround(100 * level));
      nlohmann::json row = {{"flops_fraction", level}, {"flops_limit", max_flops}};

      const auto uniform = uniform_within(net, space, max_flops, apply_opts);
      if (!uniform)
        throw InputError("FLOPs level " + std::to_string(level) +
                         " is below the smallest uniform network's (keep 1/" +
                         std::to_string(kUniformGrid) + "); raise --levels");

      // The search; the uniform network is its one baseline, so its proxy accuracy is recorded.
      const nlohmann::json config_json = {
          {"seed", a.seed},
          {"model", {{"path", a.model}}},
          {"space",
           {{"kind", "pruning"},
            {"keep", a.keep},
            {"weight_bits", nlohmann::json::array({kFloatBits})},
            {"channel_multiple", a.channel_multiple}}},
          {"strategy", evolution_section(a.evaluations, max_flops)},
          {"evaluator", evaluator},
          {"target", {{"name", "analytic-roofline"}}},
          {"budget", {{"flops", max_flops}}},
          {"baselines", {{"keep", nlohmann::json::array({uniform->keep})}}}};
      const auto config = search::SearchConfig::from_json(config_json, "metaprune");
      search::RunOptions opts;
      opts.out_dir = a.results + "/metaprune/" + stem + "_" + std::to_string(pct);
      std::filesystem::remove_all(opts.out_dir);  // a journal is never overwritten
      std::fprintf(stderr, "[bench] level %d%%: searching (%lld evaluations, <= %.2f MFLOPs)\n",
                   pct, static_cast<long long>(a.evaluations),
                   static_cast<double>(max_flops) / 1e6);
      const auto t_search = Clock::now();
      const auto run = search::run_search(config, opts);
      const double search_seconds = seconds_since(t_search);
      if (search_context.is_null()) search_context = run.context;

      std::vector<const search::Evaluation*> pool;  // search candidates within the limit
      std::optional<double> uniform_proxy;
      int64_t searched = 0;
      for (const auto& e : run.evaluations) {
        if (e.kind == "uniform" && e.ok()) uniform_proxy = e.accuracy;
        if (e.kind != "search") continue;
        ++searched;
        if (e.ok() && e.flops <= max_flops) pool.push_back(&e);
      }
      const int64_t within = static_cast<int64_t>(pool.size());
      std::stable_sort(pool.begin(), pool.end(),
                       [](const auto* x, const auto* y) { return x->accuracy > y->accuracy; });
      const search::Evaluation* best = nullptr;  // the chosen finalist's search candidate
      // The proxy's top --finalists, each trained with the first --finalist-seeds seeds; the best
      // mean on the validation split is the searched network, trained with the remaining seeds.
      // The test split never chooses (finalists' test accuracies are recorded, not compared).
      if (pool.size() > static_cast<size_t>(a.finalists))
        pool.resize(static_cast<size_t>(a.finalists));
      nlohmann::json finalists = nlohmann::json::array();
      std::optional<Trained> chosen;
      for (const auto* e : pool) {
        Trained t = train_and_score(net, e->policy, data, a, apply_opts, a.finalist_seeds);
        std::fprintf(stderr,
                     "[bench] level %d%%: finalist #%lld proxy %.4f validation %.4f test %.4f\n",
                     pct, static_cast<long long>(e->index), e->accuracy, t.validation, t.accuracy);
        finalists.push_back({{"index", e->index},
                             {"proxy_accuracy", e->accuracy},
                             {"validation_accuracy", t.validation},
                             {"validation_accuracies", t.validation_accuracies},
                             {"test_accuracy", t.accuracy},
                             {"flops", t.flops}});
        if (!chosen || t.validation > chosen->validation) chosen = std::move(t), best = e;
      }
      if (chosen) train_seeds(*chosen, a.train_seeds, data, a);  // the seeds it has not had
      row["finalists"] = finalists;
      row["search_evaluations"] = searched;
      row["search_within_limit"] = within;
      row["search_seconds"] = search_seconds;
      row["search_out"] = opts.out_dir;
      row["uniform_keep"] = uniform->keep;
      row["uniform_proxy_accuracy"] = or_null(uniform_proxy);

      std::fprintf(stderr, "[bench] level %d%%: training uniform (keep %.4f, %s, %lld steps)\n",
                   pct, uniform->keep, a.recipe.c_str(), static_cast<long long>(a.train_steps));
      const auto u = train_and_score(net, space.uniform(uniform->keep, kFloatBits), data, a,
                                     apply_opts, a.train_seeds);
      row["uniform_accuracy"] = u.accuracy;
      row["uniform_accuracies"] = u.accuracies;
      row["uniform_validation_accuracy"] = u.validation;
      row["uniform_seed_std"] = tightfit::sample_stddev(u.accuracies);
      row["uniform_flops"] = u.flops;
      row["uniform_kept_channels"] = u.kept_channels;
      row["uniform_train_seconds"] = u.seconds;
      if (chosen) {
        const Trained& s = *chosen;
        row["searched_accuracy"] = s.accuracy;
        row["searched_accuracies"] = s.accuracies;
        row["searched_validation_accuracy"] = s.validation;
        row["searched_seed_std"] = tightfit::sample_stddev(s.accuracies);
        row["searched_flops"] = s.flops;
        row["searched_policy"] = best->policy.to_json();
        row["searched_kept_channels"] = s.kept_channels;
        row["searched_proxy_accuracy"] = best->accuracy;
        row["searched_train_seconds"] = s.seconds;
        row["gain_points"] = 100 * (s.accuracy - u.accuracy);
        // Both sides share each seed (initialization and batches): the gain per seed is paired,
        // and its standard error says whether the mean gain stands out from the seeds' noise.
        std::vector<double> paired;
        for (size_t k = 0; k < s.accuracies.size() && k < u.accuracies.size(); ++k)
          paired.push_back(100 * (s.accuracies[k] - u.accuracies[k]));
        row["gain_by_seed_points"] = paired;
        row["gain_stderr_points"] =
            tightfit::sample_stddev(paired) / std::sqrt(static_cast<double>(paired.size()));
        std::fprintf(stderr, "[bench] level %d%%: searched %.4f, uniform %.4f (test, mean)\n", pct,
                     s.accuracy, u.accuracy);
      } else {
        std::fprintf(stderr, "[bench] level %d%%: no search candidate within the limit\n", pct);
        for (const char* key : {"searched_accuracy", "searched_accuracies", "searched_seed_std",
                                "searched_flops", "searched_policy", "searched_proxy_accuracy",
                                "gain_points", "gain_by_seed_points", "gain_stderr_points"})
          row[key] = nullptr;
      }
      std::fprintf(stderr, "[bench] level %d%% done (total %.0f s)\n", pct, elapsed());
      result["levels"].push_back(row);
    }

    // The ceiling: the uncompressed network trained by the same recipe and seeds.
    std::optional<Trained> full;
    if (a.uncompressed) {
      std::fprintf(stderr, "[bench] training the uncompressed network (%s, %lld steps)\n",
                   a.recipe.c_str(), static_cast<long long>(a.train_steps));
      full = train_and_score(net, {}, data, a, apply_opts, a.train_seeds);
      result["uncompressed"] = {{"accuracy", full->accuracy},
                                {"accuracies", full->accuracies},
                                {"seed_std", tightfit::sample_stddev(full->accuracies)},
                                {"flops", full->flops},
                                {"train_seconds", full->seconds}};
      for (auto& row : result["levels"])
        row["headroom_points"] = 100 * (full->accuracy - row["uniform_accuracy"].get<double>());
    } else {
      result["uncompressed"] = nullptr;
    }

    const std::string proxy =
        a.evaluator == "pruningnet"
            ? "PruningNet " + std::to_string(a.pruningnet_steps) + " steps" +
                  (pruningnet.value("reused", false) ? " (reused)" : "")
            : "candidates scored by " + a.evaluator +
                  (a.evaluator == "finetune" ? " (" + std::to_string(a.proxy_steps) + " steps)"
                                             : "");
    std::printf(
        "MetaPruning vs uniform width: %s (%.2f MFLOPs, test accuracy %.4f); %s; evolution, %lld "
        "evaluations per level; %s recipe, %lld SGD steps x %lld seeds (accuracy: mean +- std; "
        "gain: mean +- standard error of the per-seed gains); accuracy on the %lld test images\n",
        stem.c_str(), static_cast<double>(base_flops) / 1e6, base_accuracy, proxy.c_str(),
        static_cast<long long>(a.evaluations), a.recipe.c_str(),
        static_cast<long long>(a.train_steps), static_cast<long long>(a.train_seeds),
        static_cast<long long>(data.test.size()));
    std::printf("%-12s %26s %20s %20s %16s %14s\n", "FLOPs level", "MFLOPs searched / uniform",
                "searched accuracy", "uniform accuracy", "gain +- s.e.", "room (points)");
    bool every_level = true;
    std::optional<double> gain_at_target;
    for (const auto& row : result["levels"]) {
      const double level = row["flops_fraction"].get<double>();
      const bool has_searched = !row["searched_accuracy"].is_null();
      char mflops[64], searched[32] = "none", gain[32] = "n/a";
      const double uniform_mflops = row["uniform_flops"].get<double>() / 1e6;
      if (has_searched) {
        std::snprintf(mflops, sizeof mflops, "%.2f / %.2f",
                      row["searched_flops"].get<double>() / 1e6, uniform_mflops);
        std::snprintf(searched, sizeof searched, "%.4f +- %.4f",
                      row["searched_accuracy"].get<double>(),
                      row["searched_seed_std"].get<double>());
        std::snprintf(gain, sizeof gain, "%+.2f +- %.2f", row["gain_points"].get<double>(),
                      row["gain_stderr_points"].get<double>());
      } else {
        std::snprintf(mflops, sizeof mflops, "- / %.2f", uniform_mflops);
      }
      char uniform[32];
      std::snprintf(uniform, sizeof uniform, "%.4f +- %.4f", row["uniform_accuracy"].get<double>(),
                    row["uniform_seed_std"].get<double>());
      char room[32] = "n/a";  // how far the uncompressed network is above uniform width
      if (row.contains("headroom_points"))
        std::snprintf(room, sizeof room, "%+.2f", row["headroom_points"].get<double>());
      std::printf("%11.0f%% %26s %20s %20s %16s %14s\n", 100 * level, mflops, searched, uniform,
                  gain, room);
      every_level = every_level && has_searched && row["gain_points"].get<double>() >= 0;
      if (std::abs(level - kTargetLevel) < 1e-9 && has_searched)
        gain_at_target = row["gain_points"].get<double>();
    }
    if (full)
      std::printf("%11s%% %26.2f %20s %20.4f (uncompressed, same recipe; +- %.4f)\n", "100",
                  static_cast<double>(full->flops) / 1e6, "", full->accuracy,
                  tightfit::sample_stddev(full->accuracies));
    result["targets"] = {
        {"searched_ge_uniform_every_level", every_level},
        {"gain_at_25_points", or_null(gain_at_target)},
        {"gain_at_25_ge_1_point",
         gain_at_target ? nlohmann::json(*gain_at_target >= kTargetGainPoints) : nullptr}};
    char gain_text[32] = "n/a";
    if (gain_at_target) std::snprintf(gain_text, sizeof gain_text, "%+.2f", *gain_at_target);
    std::printf(
        "\ntargets: searched >= uniform at every level: %s; gain at %.0f%% FLOPs: %s points "
        "(>= %.0f: %s)\n",
        every_level ? "true" : "false", 100 * kTargetLevel, gain_text, kTargetGainPoints,
        result["targets"]["gain_at_25_ge_1_point"].dump().c_str());

    result["baseline"] = {
        {"model", a.model}, {"flops", base_flops}, {"test_accuracy", base_accuracy}};
    result["pruningnet"] = pruningnet;
    result["context"] = bench::context("metaprune", a.threads, a.seed,
                                       {{"model", a.model},
                                        {"levels", levels},
                                        {"pruningnet_steps", a.pruningnet_steps},
                                        {"pruningnet_sampling", a.pruningnet_sampling},
                                        {"pruningnet_band", a.pruningnet_band},
                                        {"pruningnet_sandwich", a.pruningnet_sandwich},
                                        {"evaluations", a.evaluations},
                                        {"train_steps", a.train_steps},
                                        {"train_seeds", a.train_seeds},
                                        {"finalists", a.finalists},
                                        {"finalist_seeds", a.finalist_seeds},
                                        {"uncompressed", a.uncompressed},
                                        {"recipe", a.recipe},
                                        {"lr", a.lr},
                                        {"channel_multiple", a.channel_multiple},
                                        {"keep", a.keep},
                                        {"evaluator", a.evaluator},
                                        {"proxy_steps", a.proxy_steps},
                                        {"validation_images", a.validation_images},
                                        {"bn_batches", a.bn_batches},
                                        {"uniform_grid", kUniformGrid}});
    if (!search_context.is_null()) result["context"]["search"] = search_context;
    result["context"]["seconds"] = elapsed();
    bench::write_json(a.out, result);
    std::printf("\nwritten: %s (%.0f s)\n", a.out.c_str(), elapsed());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench metaprune: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
