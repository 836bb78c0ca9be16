#include "search/session.h"

#include <filesystem>
#include <random>

#include "core/errors.h"
#include "latency_models/analytic.h"
#include "models/loader.h"

namespace tightfit::search {

namespace {
/// Whole networks a new latency table is calibrated on: the uncompressed one and this many
/// random policies of the space.
constexpr int kCalibrationPolicies = 5;
}  // namespace

Session::Session(const SearchConfig& c)
    : config(c),
      net(c.load_network()),
      points(policies::decision_points(net)),
      space(points, c.space) {
  apply_opts.channel_multiple = config.space.channel_multiple;
  apply_opts.calibration = &calibration;
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
  context.keep = config.space.keep;
  context.channel_multiple = config.space.channel_multiple;
  context.say = say;
  context.calibration_policies = [this] {
    std::mt19937_64 rng(config.seed);
    std::vector<policies::Policy> out = {policies::Policy{}};
    for (int k = 0; k < kCalibrationPolicies; ++k) out.push_back(space.sample_one_precision(rng));
    return out;
  };
  cost = latency_models::make_cost_model(config.cost, context);
}

policies::CompressedNetwork Session::apply(const policies::Policy& policy) const {
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
