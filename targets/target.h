#pragma once
// Targets run and time a compressed network on a real backend. A measurement that fails is a
// result with its error, not an exception (STYLE.md 4). Every measurement carries its context:
// target, precision, threads, batch, CPU and library versions (STYLE.md 7).

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "policies/compress.h"

namespace tightfit::targets {

/// A measurement whose interquartile range is this share of its median or more is suspect and
/// measured again (shared 2-core machines stall now and then).
inline constexpr double kSuspectSpread = 0.10;

struct MeasureOptions {
  std::string precision = "fp32";  ///< what to run: fp32, int8 (targets say what they support)
  int threads = 1;                 ///< intra-op threads, fixed for the measurement and recorded
  int64_t batch = 1;               ///< images per run
  int warmup_runs = 10;            ///< untimed runs first (primitive caches, OpenMP start-up)
  int min_repeats = 30;            ///< timed runs, at least
  double min_time_ms = 200;        ///< and at least this much total timed time
  int max_repeats = 10000;         ///< upper bound on timed runs
  int max_attempts = 3;            ///< measurements in all while the earlier ones are suspect
  uint64_t seed = 0;               ///< random input data
  /// Non-empty: time only this node's own kernel inside the network, without the layout
  /// conversions at the network's edges (latency tables time layers this way). Targets that
  /// cannot isolate a node time the whole network. Not part of the JSON form.
  std::string kernel;

  template <typename Fields>
  void fields(Fields& f) {
    f("precision", precision);
    f("threads", threads);
    f("batch", batch);
    f("warmup_runs", warmup_runs);
    f("min_repeats", min_repeats);
    f("min_time_ms", min_time_ms);
    f("max_repeats", max_repeats);
    f("max_attempts", max_attempts);
    f("seed", seed);
  }
  static MeasureOptions from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
  /// ConfigError for values no measurement can use; threads above the hardware threads too
  /// (core/machine.h). `prefix` names the keys: "config.target." or "--".
  void check(const std::string& prefix) const;
};

/// InputError when a batch of `batch` inputs to `net` would not fit in available memory (named
/// `what`, e.g. "--batch"); ConfigError when it is below 1.
void check_batch_fits(const graph::Network& net, int64_t batch, const std::string& what);

struct Measurement {
  std::string target;
  std::string precision;  ///< what actually ran ("fp32")
  int threads = 0;
  int64_t batch = 0;
  double median_ms = 0;  ///< per run (per batch), lower is better
  double iqr_ms = 0;     ///< interquartile range of the timed runs
  double min_ms = 0;
  double cv = 0;  ///< coefficient of variation (stddev / mean) of the timed runs
  int samples = 0;
  int attempts = 0;       ///< measurements made; > 1 when an earlier one was suspect
  bool suspect = false;   ///< IQR / median still >= kSuspectSpread after every attempt
  bool modelled = false;  ///< computed by an analytic model, not timed on hardware
  std::string affinity;   ///< how the timed threads were pinned to CPUs (see affinity.h)
  std::string error;      ///< non-empty when the network could not be run
  bool ok() const { return error.empty(); }
  nlohmann::json to_json() const;
};

struct Capabilities {
  std::vector<std::string> precisions;  ///< run natively
  bool sparse = false;                  ///< exploits unstructured sparsity
};

class Target {
 public:
  virtual ~Target() = default;
  virtual std::string name() const = 0;
  virtual Capabilities capabilities() const = 0;
  /// Times `c` under the process-wide measurement lock (invariant 3).
  virtual Measurement measure(const policies::CompressedNetwork& c, const MeasureOptions& opts) = 0;
  /// How many of `c`'s conv/linear layers run in int8 when `c` runs in `opts.precision` here
  /// (compiled, not timed); -1 when the target cannot say (modelled and remote targets).
  virtual int64_t int8_layers(const policies::CompressedNetwork& /*c*/,
                              const MeasureOptions& /*opts*/) const {
    return -1;
  }
};

/// What a target may use besides its own config section (a remote target's connection settings
/// will come through here).
struct TargetContext {};

/// Builds target `name` from its own settings (`section`; the built-in targets have none);
/// ConfigError listing the valid names on a miss.
std::unique_ptr<Target> make_target(const std::string& name,
                                    const nlohmann::json& section = nlohmann::json::object(),
                                    const TargetContext& context = {});

/// Throws ConfigError when `target` does not run `precision`, listing what it runs.
void require_precision(const Target& target, const std::string& precision);
std::vector<std::string> target_names();

/// Context every result carries: CPU model, cores, library versions.
nlohmann::json machine_context();

}  // namespace tightfit::targets
