// `tightfit measure`: latency of a model (optionally compressed by a policy) on one target, with
// the measurement protocol of targets/timing.h and the full context.

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "datasets/batches.h"
#include "graph/json_util.h"
#include "policies/compress.h"
#include "targets/target.h"

namespace tightfit::cli {

int cmd_measure(const MeasureArgs& a) {
  auto target = targets::make_target(a.target);
  targets::require_precision(*target, a.precision);
  const graph::Network net = load_model_arg(a.model);
  policies::Policy policy;
  if (!a.policy.empty()) policy = policies::Policy::from_json(read_json_file(a.policy), a.policy);
  policies::validate(policy, net);
  policies::Calibration calibration;
  if (policies::needs_calibration(policy)) {
    const auto data = datasets::load_fashion_mnist(
        a.data_dir.empty() ? std::string(datasets::kFashionMnistDir) : a.data_dir);
    for (auto& b : datasets::sample_batches(data.train, 4, 64, data.mean, data.std, a.seed)) {
      calibration.images.push_back(b.images);
      calibration.labels.push_back(b.labels);
    }
  }
  policies::ApplyOptions apply_opts;
  apply_opts.calibration = &calibration;
  apply_opts.seed = a.seed;
  const auto c = policies::apply(net, policy, apply_opts);

  targets::MeasureOptions opts;
  opts.precision = a.precision;
  opts.threads = a.threads;
  opts.batch = a.batch;
  opts.seed = a.seed;
  std::fprintf(stderr, "[measure] %s on %s (%s, %d threads, batch %lld)\n", a.model.c_str(),
               a.target.c_str(), a.precision.c_str(), a.threads, static_cast<long long>(a.batch));
  const auto m = target->measure(c, opts);
  nlohmann::json j = m.to_json();
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
    std::printf("%s on %s: measurement failed: %s\n", a.model.c_str(), m.target.c_str(),
                m.error.c_str());
  }
  return m.ok() ? 0 : 1;
}

}  // namespace tightfit::cli
