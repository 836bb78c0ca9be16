// bench import: torchvision models from PyTorch through tightfit and back. Per fixture (made by
// tests/models/make_torchscript_fixtures.py with Debian's python3-torch when missing):
//   ops, groups        IR nodes and channel groups (pruning decision points) of the import
//   import_s           torch::jit::load, one traced run, translation (the traced file)
//   err_in             max |tightfit - PyTorch| / max |PyTorch| on the fixture's input, the
//                      worse of the traced and the scripted file
//   err_out            the same for the exported network reloaded by torch::jit::load
//   apply_s, touched   applying the keep-0.5 policy: seconds, and bytes allocated (the bench's
//                      own operator new counts every byte requested while it runs: the network's
//                      tensors are std::vectors, so each byte of a copied or newly written tensor
//                      counts once), against the network's own bytes
//   size, latency      bytes and cpu-onednn latency (batch 1, --threads) before and after
// Prints a table and writes JSON (default bench/results/import.json) with its context.

#include <sys/resource.h>
#include <torch/script.h>
#include <torch/torch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <new>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "bench/bench_util.h"
#include "core/errors.h"
#include "core/timing.h"
#include "evaluators/cost.h"
#include "graph/executor.h"
#include "latency_models/analytic.h"
#include "models/torchscript.h"
#include "policies/compress.h"

using namespace tightfit;
namespace fs = std::filesystem;

namespace {

struct Args : bench::CommonArgs {
  Args() {
    out = "bench/results/import.json";
    results = "bench/results/runs/import";
  }
  std::vector<std::string> models = {"resnet18",           "resnet50",
                                     "mobilenet_v2",       "vgg11_bn",
                                     "mobilenet_v3_small", "shufflenet_v2_x0_5",
                                     "efficientnet_b0"};
};

/// Bytes requested from the global operator new so far (replaced below, for this program).
std::atomic<int64_t> g_new_bytes{0};

torch::Tensor read_floats(const fs::path& p, std::vector<int64_t> shape) {
  std::ifstream in(p, std::ios::binary);
  auto t = torch::empty(shape, torch::kFloat32);
  in.read(reinterpret_cast<char*>(t.data_ptr<float>()),
          static_cast<std::streamsize>(t.numel() * sizeof(float)));
  if (in.gcount() != static_cast<std::streamsize>(t.numel() * sizeof(float)))
    throw InputError("fixture '" + p.string() + "' is truncated; delete the folder to remake it");
  return t;
}

double rel_error(const torch::Tensor& got, const torch::Tensor& want) {
  return (got - want).abs().max().item<double>() / want.abs().max().item<double>();
}

/// cpu-onednn's median latency, or NaN with `error` set when the engine cannot run the network.
double latency_ms(targets::Target& target, const policies::CompressedNetwork& c, int threads,
                  std::string& error) {
  targets::MeasureOptions opts;
  opts.threads = threads;
  opts.min_time_ms = 300;
  const auto m = target.measure(c, opts);
  if (m.ok()) return m.median_ms;
  error = m.error;
  return std::nan("");
}

}  // namespace

// Counting replacements of the global allocation functions (the aligned forms keep the
// library's own, which pair with their own deletes). GCC cannot see that these replace the
// library's, and would call free() on operator new's blocks a mismatch.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  g_new_bytes.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

int main(int argc, char** argv) {
  CLI::App app{"bench import: torchvision models from PyTorch through tightfit and back"};
  Args a;
  bench::CommonHelp common;
  common.results = "Folder of the TorchScript fixtures and exports";
  common.threads = "Threads of the cpu-onednn latency measurements";
  common.threads_at_least_one = true;
  bench::add_common_options(app, a, common);
  app.add_option("--models", a.models, "torchvision models (fixtures made when missing)")
      ->delimiter(',')
      ->capture_default_str();
  if (const auto rc = bench::parse_args(app, argc, argv)) return *rc;

  try {
    const auto t_bench = Clock::now();
    const fs::path dir = fs::path(a.results) / "fixtures";
    fs::create_directories(dir);
    std::vector<std::string> missing;
    for (const auto& m : a.models)
      if (!fs::exists(dir / (m + "_traced.pt"))) missing.push_back(m);
    if (!missing.empty()) {
      std::string cmd =
          "/usr/bin/python3 tests/models/make_torchscript_fixtures.py " + dir.string();
      for (const auto& m : missing) cmd += " " + m;
      std::printf("making fixtures: %s\n", cmd.c_str());
      if (std::system(cmd.c_str()) != 0)
        throw InputError(
            "making the fixtures failed (needs python3-torch and "
            "python3-torchvision: scripts/install-deps.sh)");
    }
    const graph::Shape shape = {3, 64, 64};
    auto target = latency_models::make_target("cpu-onednn");
    torch::NoGradGuard no_grad;
    std::printf("%-13s %5s %6s %9s %9s %9s %8s %9s %11s %11s %10s %10s\n", "model", "ops", "groups",
                "import_s", "err_in", "err_out", "apply_s", "touched", "size_KiB", "size_KiB_50",
                "lat_ms", "lat_ms_50");
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& name : a.models) {
      const auto x = read_floats(dir / (name + "_input.bin"), {2, 3, 64, 64});
      const auto y = read_floats(dir / (name + "_output.bin"), {2, 10});
      const auto t0 = Clock::now();
      const auto net = models::import_torchscript((dir / (name + "_traced.pt")).string(), shape);
      const double import_s = seconds_since(t0);
      double err_in = 0;
      for (const char* how : {"traced", "scripted"}) {
        const auto n =
            models::import_torchscript((dir / (name + "_" + how + ".pt")).string(), shape);
        graph::Executor ex(n);
        ex.train(false);
        err_in = std::max(err_in, rel_error(ex.forward(x), y));
      }
      const fs::path exported = fs::path(a.results) / (name + "_export.pt");
      models::export_torchscript(net, exported.string());
      auto module = torch::jit::load(exported.string());
      module.eval();
      const double err_out = rel_error(module.forward({x}).toTensor(), y);

      const auto points = policies::decision_points(net);
      policies::Policy half;
      for (const auto& c : points.channels) half.keep[c.id] = 0.5;
      policies::CompressedNetwork full;
      full.net = net;
      const int64_t bytes0 = g_new_bytes.load();
      const auto t1 = Clock::now();
      const auto pruned = policies::apply(net, half);
      const double apply_s = seconds_since(t1);
      const double touched = static_cast<double>(g_new_bytes.load() - bytes0);
      const auto cost_full = evaluators::count_cost(full);
      const auto cost_half = evaluators::count_cost(pruned);
      std::string lat_error;
      const double lat_full = latency_ms(*target, full, a.threads, lat_error);
      const double lat_half = latency_ms(*target, pruned, a.threads, lat_error);
      const double net_bytes = static_cast<double>(net.num_params()) * 4;
      std::printf("%-13s %5d %6zu %9.3f %9.2e %9.2e %8.3f %8.2fx %11.0f %11.0f %10.3f %10.3f\n",
                  name.c_str(), net.size(), points.channels.size(), import_s, err_in, err_out,
                  apply_s, touched / net_bytes, cost_full.size_bytes / 1024.0,
                  cost_half.size_bytes / 1024.0, lat_full, lat_half);
      rows.push_back({{"model", name},
                      {"ops", net.size()},
                      {"groups", points.channels.size()},
                      {"import_seconds", import_s},
                      {"max_rel_error_import", err_in},
                      {"max_rel_error_export", err_out},
                      {"apply_seconds", apply_s},
                      {"apply_bytes_touched", touched},
                      {"network_bytes", net_bytes},
                      {"size_bytes", cost_full.size_bytes},
                      {"size_bytes_keep_50", cost_half.size_bytes},
                      {"latency_ms", lat_full},
                      {"latency_ms_keep_50", lat_half}});
      if (!lat_error.empty()) rows.back()["latency_error"] = lat_error;
    }
    nlohmann::json result = {{"models", rows}};
    result["context"] = bench::context(
        "import", a.threads, a.seed,
        {{"models", a.models}, {"input_shape", shape}, {"target", "cpu-onednn"}, {"batch", 1}});
    result["context"]["seconds"] = seconds_since(t_bench);
    bench::write_json(a.out, result);
    std::printf("\nwritten: %s (%.0f s)\n", a.out.c_str(), seconds_since(t_bench));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench import: error: %s\n", without_backtrace(e.what()).c_str());
    return 2;
  }
  return 0;
}
