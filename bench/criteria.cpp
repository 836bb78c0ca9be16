// bench criteria: what each compression operator costs in accuracy on the trained ResNet-style
// Fashion-MNIST model, with no fine-tuning (BatchNorm statistics re-estimated on training
// batches, as a search would score a candidate).
//   pruning       uniform 50% of the channels of every decision point, one run per criterion
//   quantization  every conv/linear layer at 8, 4 and 2 bits (binary: 1 bit), one run per scheme
//   lowrank       every conv (tucker2, spatial) or linear (svd) layer at three rank fractions
// Prints a table per family and writes {"pruning": {criterion: accuracy}, "quantization":
// {scheme: {bits: {accuracy, size_bytes}}}, "lowrank": {kind: [{rank_fraction, accuracy,
// size_bytes}]}, "context": {...}}.

#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "bench/bench_util.h"
#include "core/errors.h"
#include "datasets/batches.h"
#include "evaluators/bn_recal.h"
#include "graph/executor.h"
#include "models/train.h"
#include "policies/compress.h"
#include "policies/importance.h"

using namespace tightfit;

namespace {

struct Args : bench::CommonArgs {
  Args() {
    model = "runs/models/resnet20.tfn";
    out = "bench/results/criteria.json";
    threads = 2;
  }
  std::string data_dir = datasets::kFashionMnistDir;
  int64_t bn_batches = 10;
  int64_t calibration_batches = 4;
  int64_t test_images = 10000;
};

struct Scored {
  double accuracy = 0;
  int64_t size_bytes = 0;
  std::string error;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "bench criteria: accuracy of every pruning criterion, quantization scheme and "
      "low-rank kind on the trained ResNet-style Fashion-MNIST model"};
  Args a;
  bench::CommonHelp common;
  common.model = "Trained network (trained as resnet20 if missing)";
  common.threads = "LibTorch threads";
  common.seed = "Calibration and random-criterion seed";
  bench::add_common_options(app, a, common);
  app.add_option("--data-dir", a.data_dir, "Fashion-MNIST folder")->capture_default_str();
  app.add_option("--bn-batches", a.bn_batches, "BN recalibration batches")->capture_default_str();
  app.add_option("--calibration-batches", a.calibration_batches,
                 "Batches of 64 training images for data-driven criteria")
      ->capture_default_str();
  app.add_option("--test-images", a.test_images, "Test images scored")->capture_default_str();
  if (const auto rc = bench::parse_args(app, argc, argv)) return *rc;

  try {
    at::set_num_threads(a.threads);
    const auto data = datasets::load_fashion_mnist(a.data_dir);
    const graph::Network net = bench::trained_model(a.model, "resnet20", 4, data, a.threads);
    policies::Calibration calibration;
    for (auto& b : datasets::sample_batches(data.train, a.calibration_batches, 64, data.mean,
                                            data.std, a.seed)) {
      calibration.images.push_back(b.images);
      calibration.labels.push_back(b.labels);
    }
    const auto dp = policies::decision_points(net);

    auto score = [&](const policies::Policy& policy) {
      Scored s;
      try {
        policies::ApplyOptions opts;
        opts.calibration = &calibration;
        opts.seed = a.seed;
        const auto c = policies::apply(net, policy, opts);
        graph::Executor ex(c.net);
        evaluators::recalibrate_bn(ex, data, a.bn_batches, 128, a.seed);
        s.accuracy = models::evaluate(ex, data.test, data.mean, data.std, a.test_images).accuracy;
        s.size_bytes = policies::size_bytes(c);
      } catch (const std::exception& e) {
        s.error = e.what();
      }
      return s;
    };
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };

    nlohmann::json result;
    const Scored base = score(policies::Policy{});
    result["baseline"] = {{"accuracy", base.accuracy}, {"size_bytes", base.size_bytes}};
    std::printf("baseline: accuracy %.4f, %lld bytes\n\n", base.accuracy,
                static_cast<long long>(base.size_bytes));

    std::printf("pruning: 50%% of the channels of every decision point\n%-16s %9s\n", "criterion",
                "accuracy");
    for (const auto& criterion : policies::criterion_names()) {
      policies::Policy p;
      p.criterion = criterion;
      for (const auto& c : dp.channels) p.keep[c.id] = 0.5;
      const Scored s = score(p);
      result["pruning"][criterion] = s.error.empty() ? nlohmann::json(s.accuracy) : nullptr;
      if (!s.error.empty()) result["errors"]["pruning." + criterion] = s.error;
      std::printf("%-16s %9.4f%s   (%.0fs)\n", criterion.c_str(), s.accuracy,
                  s.error.empty() ? "" : ("  failed: " + s.error).c_str(), elapsed());
    }

    std::printf("\nquantization: every conv/linear layer, per-channel ranges\n%-10s %5s %9s %11s\n",
                "scheme", "bits", "accuracy", "size_bytes");
    const std::vector<std::pair<std::string, std::vector<int>>> schemes = {{"symmetric", {8, 4, 2}},
                                                                           {"affine", {8, 4, 2}},
                                                                           {"kmeans", {8, 4, 2}},
                                                                           {"pow2", {8, 4, 2}},
                                                                           {"binary", {1}}};
    for (const auto& [scheme, bit_list] : schemes) {
      for (int bits : bit_list) {
        policies::Policy p;
        p.quantization.scheme = scheme;
        for (const auto& l : dp.layers) p.weight_bits[l.name] = bits;
        const Scored s = score(p);
        result["quantization"][scheme][std::to_string(bits)] = {{"accuracy", s.accuracy},
                                                                {"size_bytes", s.size_bytes}};
        if (!s.error.empty())
          result["errors"]["quantization." + scheme + "." + std::to_string(bits)] = s.error;
        std::printf("%-10s %5d %9.4f %11lld%s\n", scheme.c_str(), bits, s.accuracy,
                    static_cast<long long>(s.size_bytes),
                    s.error.empty() ? "" : ("  failed: " + s.error).c_str());
      }
    }

    std::printf(
        "\nlow-rank: every layer of the kind, rank as a fraction of full rank\n"
        "%-8s %6s %9s %11s %8s\n",
        "kind", "rank", "accuracy", "size_bytes", "applied");
    for (const std::string kind : {"tucker2", "spatial", "svd"}) {
      for (double fraction : {0.25, 0.5, 0.75}) {
        policies::Policy p;
        p.factorization.conv = kind == "svd" ? "tucker2" : kind;
        for (const auto& l : dp.layers) {
          const bool linear = l.op == "linear";
          if (l.full_rank > 0 && linear == (kind == "svd")) p.rank[l.name] = fraction;
        }
        // Count how many of the asked factorizations were applied (the rest would have grown).
        int applied = 0, asked = 0;
        Scored s;
        try {
          policies::ApplyOptions opts;
          const auto c = policies::apply(net, p, opts);
          for (const auto& r : c.lowrank) applied += r.applied, ++asked;
        } catch (const std::exception&) {
        }
        s = score(p);
        result["lowrank"][kind].push_back({{"rank_fraction", fraction},
                                           {"accuracy", s.accuracy},
                                           {"size_bytes", s.size_bytes},
                                           {"layers_factorized", applied},
                                           {"layers_asked", asked}});
        if (!s.error.empty()) result["errors"]["lowrank." + kind] = s.error;
        std::printf("%-8s %6.2f %9.4f %11lld %4d/%-3d%s\n", kind.c_str(), fraction, s.accuracy,
                    static_cast<long long>(s.size_bytes), applied, asked,
                    s.error.empty() ? "" : ("  failed: " + s.error).c_str());
      }
    }

    result["context"] = bench::context("criteria", a.threads, a.seed,
                                       {{"model", a.model},
                                        {"bn_batches", a.bn_batches},
                                        {"calibration_batches", a.calibration_batches},
                                        {"test_images", a.test_images},
                                        {"model_meta", net.meta()}});
    result["context"]["seconds"] = elapsed();
    bench::write_json(a.out, result);
    std::printf("\nwritten: %s (%.0f s)\n", a.out.c_str(), elapsed());
  } catch (const InputError& e) {
    std::fprintf(stderr, "bench criteria: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
