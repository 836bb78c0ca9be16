// `tightfit profile`: builds a latency lookup table for a model and search space on a target —
// every conv/linear configuration the space can reach, timed as the target runs it — calibrates
// it against whole-network measurements, and with --check reports how well it predicts.
// First (--curves N) it times the N largest layers at a run of output channel counts; those
// curves give the target's preferred channel multiple, which a space with
// "channel_multiple": "auto" rounds to. The table is saved after every entry, so an interrupted
// profile resumes where it stopped.

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>

#include "cli/commands.h"
#include "core/json.h"
#include "latency_models/analytic.h"
#include "latency_models/channel_curve.h"
#include "latency_models/lut.h"
#include "models/loader.h"
#include "policies/compress.h"
#include "search/space.h"
#include "targets/target.h"

namespace tightfit::cli {

int cmd_profile(const ProfileArgs& a) {
  if (a.curves < 0)
    throw ConfigError("--curves is " + std::to_string(a.curves) +
                      "; give the number of layers to time vs channel count (0 for none)");
  auto target = latency_models::make_target(a.target);
  targets::require_precision(*target, a.precision);
  const graph::Network net = models::load_model(a.model);
  targets::check_batch_fits(net, a.batch, "--batch");
  search::SpaceConfig space;
  if (!a.space.empty()) {
    const auto j = read_json_file(a.space);
    space = search::SpaceConfig::from_json(j.contains("space") ? j["space"] : j, a.space);
  }
  targets::MeasureOptions opts;
  opts.precision = a.precision;
  opts.threads = a.threads;
  opts.batch = a.batch;
  opts.seed = a.seed;
  opts.min_time_ms = a.min_time_ms;
  opts.check("--");
  if (a.calibration_points < 0 || a.check < 0)
    throw ConfigError("--calibration-points and --check must be >= 0");

  const auto context = latency_models::LutContext::of(a.target, opts, a.model, net);
  latency_models::LookupTable table(context);
  if (std::filesystem::exists(a.out)) {
    table = latency_models::LookupTable::load(a.out, context);
    if (table.version() < latency_models::kLutFormatVersion) {
      std::fprintf(stderr, "[profile] %s was made by an older tightfit: profiling it again\n",
                   a.out.c_str());
      table = latency_models::LookupTable(context);
    } else {
      std::fprintf(stderr, "[profile] resuming %s: %zu entries already measured\n", a.out.c_str(),
                   table.entries().size());
    }
  }

  // Latency vs channel count first: the preferred multiple decides which keys are reachable.
  const std::filesystem::path out_path(a.out);
  if (out_path.has_parent_path()) std::filesystem::create_directories(out_path.parent_path());
  if (a.curves > 0 && !table.channel_curves().empty()) {
    std::fprintf(stderr, "[profile] %zu latency-vs-channels curves already measured\n",
                 table.channel_curves().size());
  } else if (a.curves > 0) {
    const auto layers = latency_models::curve_layers(net, static_cast<size_t>(a.curves));
    for (size_t i = 0; i < layers.size(); ++i) {
      table.channel_curves().push_back(
          latency_models::measure_channel_curve(layers[i], *target, opts));
      const auto& points = table.channel_curves().back().points;
      std::fprintf(stderr, "[profile] curve %zu/%zu %s: %lld..%lld channels, %.4f..%.4f ms\n",
                   i + 1, layers.size(), layers[i].str().c_str(),
                   static_cast<long long>(points.front().channels),
                   static_cast<long long>(points.back().channels), points.front().median_ms,
                   points.back().median_ms);
    }
    if (!table.channel_curves().empty()) {
      table.set_preferred_channel_multiple(
          latency_models::preferred_multiple(table.channel_curves()));
      table.save(a.out);
    }
  }
  if (table.preferred_channel_multiple() > 0)
    std::fprintf(stderr, "[profile] preferred channel multiple on %s (%s): %lld\n",
                 a.target.c_str(), a.precision.c_str(),
                 static_cast<long long>(table.preferred_channel_multiple()));
  if (space.channel_multiple == search::kAutoChannelMultiple) {
    if (table.preferred_channel_multiple() <= 0)
      throw ConfigError(a.space + ": channel_multiple is \"auto\" but no latency curves were " +
                        "measured (--curves 0); use --curves 3 or give a number");
    space.channel_multiple = table.preferred_channel_multiple();
    std::fprintf(stderr, "[profile] channel_multiple \"auto\" -> %lld\n",
                 static_cast<long long>(space.channel_multiple));
  }

  const search::SearchSpace search_space(policies::decision_points(net), space);
  // Calibration on the uncompressed network and random policies, measured end to end; the
  // check's policies are drawn after them from the same generator.
  std::mt19937_64 rng(a.seed);
  const auto calibration =
      search_space.latency_calibration(rng, std::max(0, a.calibration_points - 3));
  // A live progress bar on a terminal; a line per tenth in a log file.
  const bool live = ::isatty(STDERR_FILENO);
  latency_models::build_table(
      table, net, search_space.reach(), calibration, *target, opts, opts,
      [&](size_t done, size_t total) {
        if (done == 1)  // build_table enumerates the configurations once; say how many now
          std::fprintf(stderr, "[profile] %s on %s (%s, %d threads): %zu layer configurations\n",
                       a.model.c_str(), a.target.c_str(), a.precision.c_str(), a.threads, total);
        table.save(a.out);  // resumable: every entry is on disk as soon as it is measured
        constexpr int kBarWidth = 30;
        const int filled = static_cast<int>(kBarWidth * done / std::max<size_t>(1, total));
        if (live) {
          std::fprintf(stderr, "\r[profile] [%s%s] %zu/%zu", std::string(filled, '#').c_str(),
                       std::string(kBarWidth - filled, '.').c_str(), done, total);
          if (done == total) std::fprintf(stderr, "\n");
        } else if (done == total || done % std::max<size_t>(1, total / 10) == 0) {
          std::fprintf(stderr, "[profile] %zu/%zu layer configurations\n", done, total);
        }
      });
  table.save(a.out);
  nlohmann::json result = {{"out", a.out},
                           {"entries", table.entries().size()},
                           {"scale", table.scale()},
                           {"offset_ms", table.offset_ms()},
                           {"channel_multiple", space.channel_multiple}};
  if (table.preferred_channel_multiple() > 0) {
    result["preferred_channel_multiple"] = table.preferred_channel_multiple();
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& curve : table.channel_curves()) layers.push_back(curve.layer);
    result["curve_layers"] = layers;
  }
  std::fprintf(stderr,
               "[profile] calibrated on %d networks: latency = %.3f x layer sum + %.3f ms\n",
               a.calibration_points, table.scale(), table.offset_ms());

  if (a.check > 0) {
    std::vector<policies::Policy> check;
    for (int k = 0; k < a.check; ++k) check.push_back(search_space.sample(rng));
    const auto checked = latency_models::check_table(
        table, net, check, space.channel_multiple, *target, opts, [&](size_t done) {
          if (live) std::fprintf(stderr, "\r[profile] check %zu/%d", done, a.check);
        });
    if (live) std::fprintf(stderr, "\n");
    result["check"] = checked.to_json();
    table.set_check(checked.to_json());  // the table says how far it can be trusted
    table.save(a.out);
  }
  result["context"] = targets::machine_context();
  if (a.json) {
    std::cout << result.dump(2) << "\n";
  } else {
    std::printf("latency table %s: %zu entries, calibrated %.3f x sum + %.3f ms\n", a.out.c_str(),
                table.entries().size(), table.scale(), table.offset_ms());
    if (table.preferred_channel_multiple() > 0)
      std::printf("preferred channel multiple: %lld (from %zu latency-vs-channels curves)\n",
                  static_cast<long long>(table.preferred_channel_multiple()),
                  table.channel_curves().size());
    if (result.contains("check"))
      std::printf(
          "check on %d random policies: RMSPE %.1f%%, within 5%%: %.0f%%, within 10%%: "
          "%.0f%%\n",
          a.check, 100 * result["check"]["rmspe"].get<double>(),
          100 * result["check"]["within_5pct"].get<double>(),
          100 * result["check"]["within_10pct"].get<double>());
  }
  return 0;
}

}  // namespace tightfit::cli
