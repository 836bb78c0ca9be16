#include "targets/onednn_cpu.h"

#include <ATen/Parallel.h>

#include <random>

#include "core/errors.h"
#include "targets/onednn_engine.h"
#include "targets/timing.h"

namespace tightfit::targets {

Capabilities OneDnnCpuTarget::capabilities() const {
  return {OneDnnEngine::supported_precisions(), false};
}

Measurement OneDnnCpuTarget::measure(const policies::CompressedNetwork& c,
                                     const MeasureOptions& opts) {
  Measurement m;
  m.target = name();
  m.precision = opts.precision;
  m.threads = opts.threads;
  m.batch = opts.batch;
  std::lock_guard<std::mutex> lock(measurement_lock());
  // Debian's oneDNN runs on OpenMP, the same libgomp as LibTorch: at::set_num_threads sets
  // OpenMP's thread count (omp_set_num_threads directly would need linking OpenMP).
  const int previous_threads = at::get_num_threads();
  try {
    at::set_num_threads(opts.threads);
    OneDnnEngine engine(c.net, opts.batch, opts.precision);
    m.precision = engine.precision();
    const auto& in_shape = engine.input_shape();
    int64_t count = 1;
    for (int64_t d : in_shape) count *= d;
    std::mt19937_64 rng(opts.seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(count));
    for (float& v : x) v = normal(rng);
    engine.run(x.data());  // fills every buffer a kernel-only timing reads
    if (opts.kernel.empty())
      time_runs([&] { engine.run(x.data()); }, opts, m);
    else
      time_runs([&] { engine.run_node(opts.kernel); }, opts, m);
  } catch (const std::exception& e) {
    m.error = without_backtrace(e.what());
  }
  at::set_num_threads(previous_threads);
  return m;
}

int64_t OneDnnCpuTarget::int8_layers(const policies::CompressedNetwork& c,
                                     const MeasureOptions& opts) const {
  if (opts.precision != "int8") return 0;
  return OneDnnEngine(c.net, 1, opts.precision).int8_layers();
}

}  // namespace tightfit::targets
