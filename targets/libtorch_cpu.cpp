#include "targets/libtorch_cpu.h"

#include <torch/torch.h>

#include <algorithm>

#include "core/errors.h"
#include "graph/executor.h"
#include "targets/libtorch_int8.h"
#include "targets/timing.h"

namespace tightfit::targets {

Capabilities LibTorchCpuTarget::capabilities() const {
  Capabilities caps{{"fp32"}, false};
  if (LibTorchInt8Model::supported()) caps.precisions.push_back("int8");
  return caps;
}

Measurement LibTorchCpuTarget::measure(const policies::CompressedNetwork& c,
                                       const MeasureOptions& opts) {
  Measurement m;
  m.target = name();
  m.precision = opts.precision;
  const auto precisions = capabilities().precisions;
  if (std::find(precisions.begin(), precisions.end(), opts.precision) == precisions.end()) {
    std::string runs;
    for (const auto& p : precisions) runs += (runs.empty() ? "" : ", ") + p;
    m.error = "cpu-libtorch runs " + runs + " only (asked for " + opts.precision + ")";
    return m;
  }
  m.threads = opts.threads;
  m.batch = opts.batch;
  std::lock_guard<std::mutex> lock(measurement_lock());
  const int previous_threads = at::get_num_threads();
  try {
    at::set_num_threads(opts.threads);
    torch::NoGradGuard no_grad;
    std::vector<int64_t> shape = {opts.batch};
    for (int64_t d : c.net.input_shape()) shape.push_back(d);
    auto gen = at::detail::createCPUGenerator(opts.seed);
    auto x = torch::randn(shape, gen);
    if (opts.precision == "int8") {
      // Output grids of int8 layers that reach no fake_quant come from the timed input itself:
      // their values do not change the time.
      LibTorchInt8Model model(c.net, x);
      m.precision = model.precision();
      time_runs([&] { model.forward(x); }, opts, m);
    } else {
      graph::Executor ex(c.net);
      ex.train(false);
      time_runs([&] { ex.forward(x); }, opts, m);
    }
  } catch (const std::exception& e) {
    m.error = without_backtrace(e.what());
  }
  at::set_num_threads(previous_threads);
  return m;
}

int64_t LibTorchCpuTarget::int8_layers(const policies::CompressedNetwork& c,
                                       const MeasureOptions& opts) const {
  if (opts.precision != "int8" || !LibTorchInt8Model::supported()) return 0;
  return LibTorchInt8Model(c.net).int8_layers();
}

}  // namespace tightfit::targets
