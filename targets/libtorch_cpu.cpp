#include "targets/libtorch_cpu.h"

#include <torch/torch.h>

#include "graph/executor.h"
#include "targets/timing.h"

namespace tightfit::targets {

Measurement LibTorchCpuTarget::measure(const policies::CompressedNetwork& c,
                                       const MeasureOptions& opts) {
  Measurement m;
  m.target = name();
  m.precision = "fp32";
  if (opts.precision != "fp32") {
    m.error = "cpu-libtorch runs fp32 only (asked for " + opts.precision + ")";
    return m;
  }
  m.threads = opts.threads;
  m.batch = opts.batch;
  std::lock_guard<std::mutex> lock(measurement_lock());
  const int previous_threads = at::get_num_threads();
  try {
    at::set_num_threads(opts.threads);
    torch::NoGradGuard no_grad;
    graph::Executor ex(c.net);
    ex.train(false);
    std::vector<int64_t> shape = {opts.batch};
    for (int64_t d : c.net.input_shape()) shape.push_back(d);
    auto gen = at::detail::createCPUGenerator(opts.seed);
    auto x = torch::randn(shape, gen);
    time_runs([&] { ex.forward(x); }, opts, m);
  } catch (const std::exception& e) {
    m.error = e.what();
  }
  at::set_num_threads(previous_threads);
  return m;
}

}  // namespace tightfit::targets
