// bench proxies: how well each accuracy proxy ranks candidates, and what it costs. Draws
// --samples policies from a joint space (channels kept x weight bits) of the trained ResNet-style
// Fashion-MNIST model, near compression levels spread over [0, 1] (search/fidelity.h), and scores
// each with every proxy and with the reference, a longer fine-tune with distillation scored on
// the whole validation split:
//   subset      validation subset, BN statistics as cut
//   bn-recal    BN statistics re-estimated on training batches first (EagleEye's adaptive BN)
//   finetune    a short fine-tune with distillation, then the subset
//   pruningnet  MetaPruning's PruningNet weights (trained here once, then reused), BN recalibrated
//   predictor   an MLP from the policy encoding, out-of-fold over the reference accuracies
// Prints a table and writes {"proxies": {name: {"ms_per_candidate", "kendall_tau",
// "spearman_rho"}}, "reference", "targets", "samples", "context"}. Target: the best proxy that
// costs <= 2 s per candidate reaches Kendall's tau >= 0.6.

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "bench/bench_util.h"
#include "evaluators/pruningnet.h"
#include "graph/serialize.h"
#include "search/config.h"
#include "search/fidelity.h"

using namespace tightfit;

namespace {

struct Args : bench::CommonArgs {
  Args() {
    model = "runs/models/resnet20.tfn";
    zoo = "resnet20";
    out = "bench/results/proxies.json";
    results = "bench/results/runs";  // not an option: where the PruningNet file is kept
    threads = 2;
  }
  int64_t samples = 30;
  int64_t reference_steps = 150;
  int64_t finetune_steps = 20;
  int64_t pruningnet_steps = 600;
  int64_t validation_images = 2000;
};

constexpr int kTrainEpochs = 2;
constexpr double kCheapMs = 2000;  // the target's cost limit per candidate
constexpr double kTargetTau = 0.6;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench proxies: Kendall's tau of accuracy proxies against a longer fine-tune"};
  Args a;
  bench::CommonHelp common;
  common.out = "JSON result";
  common.model = "Trained network (trained first when missing)";
  common.zoo = true;
  common.threads = "LibTorch threads of every proxy";
  common.seed = "Policies drawn";
  bench::add_common_options(app, a, common);
  app.add_option("--samples", a.samples, "Random policies scored")->capture_default_str();
  app.add_option("--reference-steps", a.reference_steps, "Fine-tuning steps of the reference")
      ->capture_default_str();
  app.add_option("--finetune-steps", a.finetune_steps, "Steps of the finetune proxy")
      ->capture_default_str();
  app.add_option("--pruningnet-steps", a.pruningnet_steps,
                 "PruningNet training steps (when its file is missing)")
      ->capture_default_str();
  app.add_option("--validation-images", a.validation_images, "Images the proxies score")
      ->capture_default_str();
  if (const auto rc = bench::parse_args(app, argc, argv)) return *rc;

  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  try {
    const auto data = datasets::load_fashion_mnist();
    const auto net = bench::trained_model(a.model, a.zoo, kTrainEpochs, data, a.threads);
    const std::string stem = std::filesystem::path(a.model).stem().string();
    const std::string pnet_path = a.results + "/" + stem + ".pnet";
    bool reuse = std::filesystem::exists(pnet_path);
    if (reuse)
      reuse = evaluators::PruningNet::read_info(pnet_path).network_hash ==
              evaluators::network_hash(net);
    if (!reuse) {
      std::fprintf(stderr, "[bench] training a PruningNet for %s (%lld steps)\n", a.model.c_str(),
                   static_cast<long long>(a.pruningnet_steps));
      evaluators::PruningNet pn(net, {}, a.seed);
      evaluators::PruningNetTrainOptions o;
      o.steps = a.pruningnet_steps;
      o.threads = a.threads;
      o.seed = a.seed;
      pn.train(data, o);
      std::filesystem::create_directories(a.results);
      pn.save(pnet_path);
    }

    const nlohmann::json config_json = {{"seed", a.seed},
                                        {"model", {{"path", a.model}}},
                                        {"space",
                                         {{"kind", "joint"},
                                          {"keep", {0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0}},
                                          {"weight_bits", {32, 8, 4}},
                                          {"channel_multiple", 8}}}};
    const auto config = search::SearchConfig::from_json(config_json, "proxies");
    const nlohmann::json scoring = {{"validation_images", a.validation_images},
                                    {"threads", a.threads}};
    auto with = [&](nlohmann::json j) {
      j.update(scoring);
      return j;
    };
    search::FidelityOptions opts;
    opts.samples = a.samples;
    opts.reference.steps = a.reference_steps;
    opts.reference.score.threads = a.threads;
    opts.proxies = {{"subset", with({})},
                    {"bn-recal", with({{"bn_batches", 10}})},
                    {"finetune", with({{"steps", a.finetune_steps}, {"distill", true}})},
                    {"pruningnet", with({{"path", pnet_path}, {"bn_batches", 10}})},
                    {"predictor", {{"seed", a.seed}}}};
    const auto r = search::measure_fidelity(config, opts);

    std::printf(
        "\nbench proxies: %s, %lld policies (keep x weight bits), reference = fine-tune "
        "of %lld steps with distillation on %lld validation images\n\n",
        a.model.c_str(), static_cast<long long>(r.policies.size()),
        static_cast<long long>(a.reference_steps),
        static_cast<long long>(opts.reference.score.validation_images));
    std::printf("%s", r.table().c_str());

    nlohmann::json result = r.to_json();
    std::string best;
    double best_tau = -2;
    for (const auto& p : r.proxies)
      if (p.ms_per_candidate <= kCheapMs && !std::isnan(p.agreement.kendall_tau) &&
          p.agreement.kendall_tau > best_tau) {
        best_tau = p.agreement.kendall_tau;
        best = p.name;
      }
    result["targets"] = {
        {"best_cheap_proxy", best.empty() ? nlohmann::json(nullptr) : nlohmann::json(best)},
        {"best_cheap_kendall_tau",
         best.empty() ? nlohmann::json(nullptr) : nlohmann::json(best_tau)},
        {"cheap_ms_limit", kCheapMs},
        {"met", !best.empty() && best_tau >= kTargetTau}};
    result["context"] = bench::context("proxies", a.threads, a.seed,
                                       {{"model", a.model},
                                        {"samples", a.samples},
                                        {"reference_steps", a.reference_steps},
                                        {"finetune_steps", a.finetune_steps},
                                        {"pruningnet", pnet_path},
                                        {"validation_images", a.validation_images}});
    result["context"]["fidelity"] = r.context;
    result["context"]["seconds"] = elapsed();
    std::printf(
        "\ntarget: best proxy costing <= %.0f ms per candidate reaches tau >= %.1f: %s "
        "(%s, tau %.3f)\n",
        kCheapMs, kTargetTau, result["targets"]["met"].dump().c_str(),
        best.empty() ? "none" : best.c_str(), best_tau);
    bench::write_json(a.out, result);
    std::printf("written: %s (%.0f s)\n", a.out.c_str(), elapsed());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench proxies: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
