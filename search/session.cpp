#include "search/session.h"

#include <filesystem>
#include <random>

#include "core/errors.h"
#include "latency_models/analytic.h"
#include "latency_models/lut.h"
#include "models/loader.h"

namespace tightfit::search {

namespace {
/// Random policies of the space a new latency table is calibrated on, besides the extremes
/// (SearchSpace::latency_calibration).
constexpr int kCalibrationPolicies = 5;
/// Layers whose latency curves resolve "auto" when no latency table has them (as `tightfit
/// profile --curves 3`), each count timed for at most this long.
constexpr size_t kCurveLayers = 3;
constexpr double kCurveMs = 50.0;

/// The space to check a config with while its channel multiple is still "auto".
SpaceConfig provisional(SpaceConfig space) {
  if (space.channel_multiple == kAutoChannelMultiple) space.channel_multiple = 1;
  return space;
}
}  // namespace

Session::Session(const SearchConfig& c)
    : config(c),
      net(c.load_network()),
      points(policies::decision_points(net)),
      space(points, provisional(c.space)),
      channel_multiple(c.space.channel_multiple) {
  apply_opts.channel_multiple = channel_multiple;
  apply_opts.calibration = &calibration;
}

void Session::resolve_channel_multiple(const Say& say) {
  if (channel_multiple != kAutoChannelMultiple) return;
  if (!target) open_target();
  int64_t m = 0;
  if (config.cost.latency == "lut" && std::filesystem::exists(config.cost.table)) {
    const auto table = latency_models::LookupTable::load(
        config.cost.table,
        latency_models::LutContext::of(target->name(), config.measure, model_name(), net));
    m = table.preferred_channel_multiple();
    if (m > 0) channel_multiple_source = {{"from", "latency table"}, {"table", config.cost.table}};
  }
  if (m <= 0) {
    if (say) say("channel_multiple \"auto\": timing latency vs channels of the largest layers");
    targets::MeasureOptions opts = config.measure;
    opts.min_time_ms = std::min(opts.min_time_ms, kCurveMs);
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& layer : latency_models::curve_layers(net, kCurveLayers)) {
      channel_curves.push_back(latency_models::measure_channel_curve(layer, *target, opts));
      layers.push_back(layer.str());
    }
    if (channel_curves.empty())
      throw InputError("channel_multiple is \"auto\" but model '" + model_name() +
                       "' has no conv/linear layer with 2 or more outputs to time; give a number");
    m = latency_models::preferred_multiple(channel_curves);
    channel_multiple_source = {{"from", "latency curves"}, {"layers", layers}};
  }
  channel_multiple_source["auto"] = m;
  if (say)
    say("channel_multiple \"auto\" -> " + std::to_string(m) + " (" +
        channel_multiple_source["from"].get<std::string>() + ")");
  channel_multiple = m;
  apply_opts.channel_multiple = m;
  SpaceConfig resolved = config.space;
  resolved.channel_multiple = m;
  space = SearchSpace(points, resolved);
}

void Session::open_target() {
  target = latency_models::make_target(config.target);
  targets::require_precision(*target, config.measure.precision);
}

void Session::load_data(int64_t calibration_batches, int64_t calibration_batch_size) {
  data = config.load_data();
  const graph::Shape images = {data.train.channels, data.train.rows, data.train.cols};
  if (images != net.input_shape())
    throw InputError("model '" + model_name() + "' takes inputs of " +
                     graph::shape_str(net.input_shape()) + " but data set '" + config.dataset +
                     "' has images of " + graph::shape_str(images) +
                     "; use data of the model's input shape, or a model made for this data");
  if (calibration_batches > 0)
    calibration = evaluators::sample_calibration(data, config.seed, calibration_batches,
                                                 calibration_batch_size);
}

void Session::open_evaluator() {
  evaluator = evaluators::make_evaluator(config.evaluator, config.evaluator_config, data);
}

void Session::open_cost_model(const Say& say) {
  TIGHTFIT_CHECK(target, "open_target() before open_cost_model()");
  latency_models::CostContext context;
  context.target = target.get();
  context.measure = config.measure;
  context.net = &net;
  context.model = model_name();
  context.reach = space.reach();
  context.channel_curves = channel_curves;
  context.say = say;
  context.calibration_policies = [this] {
    std::mt19937_64 rng(config.seed);
    return space.latency_calibration(rng, kCalibrationPolicies);
  };
  cost = latency_models::make_cost_model(config.cost, context);
}

policies::CompressedNetwork Session::apply(const policies::Policy& policy) const {
  if (channel_multiple == kAutoChannelMultiple)
    throw ConfigError(
        "space.channel_multiple is \"auto\", which this command does not resolve; give the "
        "number `tightfit profile` or the search printed");
  return policies::apply(net, policy, apply_opts);
}

std::string Session::model_name() const {
  return config.model_path.empty() ? config.model_zoo : config.model_path;
}

SearchConfig policy_command_config(const std::string& model, const std::string& data_dir,
                                   int64_t channel_multiple, uint64_t seed) {
  models::check_model_spec(model);
  SearchConfig c;
  if (std::filesystem::exists(model)) {
    c.model_path = model;
  } else {
    c.model_zoo = model;
  }
  c.dataset_config["dir"] = data_dir;
  c.space.channel_multiple = channel_multiple;
  c.seed = seed;
  return c;
}

}  // namespace tightfit::search
