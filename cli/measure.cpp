// `tightfit measure`: latency of a model (optionally compressed by a policy) on one target, with
// the measurement protocol of targets/timing.h and the full context.

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "core/json.h"
#include "evaluators/evaluator.h"
#include "latency_models/analytic.h"
#include "models/loader.h"
#include "policies/compress.h"
#include "targets/onednn_engine.h"
#include "targets/target.h"

namespace tightfit::cli {

namespace {

/// The `count` slowest steps of the oneDNN engine running `c` (median of 50 step-by-step runs),
/// with their share of the sum of all steps.
nlohmann::json slowest_steps(const policies::CompressedNetwork& c,
                             const targets::MeasureOptions& opts, int count) {
  const int previous_threads = at::get_num_threads();
  at::set_num_threads(opts.threads);
  targets::OneDnnEngine engine(c.net, opts.batch, opts.precision);
  const auto& shape = engine.input_shape();
  const auto x = torch::randn(std::vector<int64_t>(shape.begin(), shape.end())).contiguous();
  auto steps = engine.step_times(x.data_ptr<float>(), 50);
  at::set_num_threads(previous_threads);
  double total = 0;
  for (const auto& s : steps) total += s.median_ms;
  std::stable_sort(steps.begin(), steps.end(),
                   [](const auto& l, const auto& r) { return l.median_ms > r.median_ms; });
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < steps.size() && static_cast<int>(i) < count; ++i)
    out.push_back({{"node", steps[i].node},
                   {"kind", steps[i].kind},
                   {"median_ms", steps[i].median_ms},
                   {"share", total > 0 ? steps[i].median_ms / total : 0.0}});
  return out;
}

}  // namespace

int cmd_measure(const MeasureArgs& a) {
  if (a.steps > 0 && a.target != "cpu-onednn")
    throw ConfigError("--steps lists the oneDNN engine's steps: use it with --target cpu-onednn");
  targets::MeasureOptions opts;
  opts.precision = a.precision;
  opts.threads = a.threads;
  opts.batch = a.batch;
  opts.seed = a.seed;
  opts.check("--");
  auto target = latency_models::make_target(a.target);
  targets::require_precision(*target, a.precision);
  const graph::Network net = models::load_model(a.model);
  targets::check_batch_fits(net, a.batch, "--batch");
  policies::Policy policy;
  if (!a.policy.empty()) policy = policies::Policy::from_json(read_json_file(a.policy), a.policy);
  policies::validate(policy, net);
  policies::Calibration calibration;
  if (policies::needs_calibration(policy)) {
    const graph::Shape fashion_shape = {1, 28, 28};
    if (net.input_shape() == fashion_shape) {
      const auto data = datasets::load_fashion_mnist(
          a.data_dir.empty() ? std::string(datasets::kFashionMnistDir) : a.data_dir);
      calibration = evaluators::sample_calibration(data, a.seed);
    } else {
      // Latency does not depend on the ranges: normal noise stands in for data of this shape.
      std::fprintf(stderr,
                   "[measure] input %s is not Fashion-MNIST's: activation ranges calibrated on "
                   "random images\n",
                   graph::shape_str(net.input_shape()).c_str());
      torch::manual_seed(a.seed);
      std::vector<int64_t> shape = {4};
      shape.insert(shape.end(), net.input_shape().begin(), net.input_shape().end());
      for (int b = 0; b < 2; ++b) {
        calibration.images.push_back(torch::randn(shape));
        calibration.labels.push_back(torch::zeros({4}, torch::kLong));
      }
    }
  }
  policies::ApplyOptions apply_opts;
  apply_opts.calibration = &calibration;
  apply_opts.seed = a.seed;
  const auto c = policies::apply(net, policy, apply_opts);

  std::fprintf(stderr, "[measure] %s on %s (%s, %d threads, batch %lld)\n", a.model.c_str(),
               a.target.c_str(), a.precision.c_str(), a.threads, static_cast<long long>(a.batch));
  const auto m = target->measure(c, opts);
  nlohmann::json j = m.to_json();
  if (a.steps > 0) j["steps"] = slowest_steps(c, opts, a.steps);
  j["model"] = a.model;
  j["policy"] = policy.to_json();
  j["protocol"] = opts.to_json();
  j["context"] = targets::machine_context();
  if (a.json) {
    std::cout << j.dump(2) << "\n";
  } else if (m.ok()) {
    std::printf(
        "%s on %s (%s, %d threads, batch %lld): median %.3f ms, IQR %.3f ms, CV %.3f, "
        "min %.3f ms, %d runs%s\n",
        a.model.c_str(), m.target.c_str(), m.precision.c_str(), m.threads,
        static_cast<long long>(m.batch), m.median_ms, m.iqr_ms, m.cv, m.min_ms, m.samples,
        m.suspect ? " (suspect: spread >= 10% after every attempt)" : "");
  } else {
    std::fprintf(stderr, "tightfit: error: %s on %s: measurement failed: %s\n", a.model.c_str(),
                 m.target.c_str(), m.error.c_str());
  }
  if (a.steps > 0 && !a.json) {
    std::printf("%-40s %-10s %10s %7s\n", "slowest steps: node", "kind", "ms", "share");
    for (const auto& s : j["steps"])
      std::printf("%-40s %-10s %10.4f %6.1f%%\n", s["node"].get<std::string>().c_str(),
                  s["kind"].get<std::string>().c_str(), s["median_ms"].get<double>(),
                  100 * s["share"].get<double>());
  }
  return m.ok() ? 0 : 1;
}

}  // namespace tightfit::cli
