// The `tightfit` executable: one subcommand per user task. User mistakes end in one line on
// stderr and exit code 2 (invariant 6); internal errors in exit code 1 with "internal error".

#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "datasets/fashion_mnist.h"
#include "evaluators/cost.h"
#include "graph/channels.h"
#include "graph/errors.h"
#include "graph/executor.h"
#include "graph/json_util.h"
#include "graph/serialize.h"
#include "models/train.h"
#include "models/zoo.h"
#include "policies/compress.h"
#include "policies/policy.h"
#include "search/controller.h"

namespace {

using namespace tightfit;
constexpr int kUserErrorExit = 2;

/// A model argument: a network file, or a zoo name (random weights).
graph::Network load_model_arg(const std::string& arg) {
  if (std::filesystem::exists(arg)) return graph::load_network(arg);
  const auto names = models::zoo_names();
  if (std::find(names.begin(), names.end(), arg) != names.end())
    return models::make_model(arg, models::default_options(arg));
  throw InputError("'" + arg +
                   "' is neither a network file nor a zoo model; valid zoo models: " + join(names));
}

int cmd_info(const std::string& model, bool json) {
  const graph::Network net = load_model_arg(model);
  const auto shapes = graph::infer_shapes(net);
  const auto ca = graph::analyze_channels(net);
  nlohmann::json j;
  j["model"] = model;
  j["input"] = net.input_shape();
  j["params"] = net.num_params();
  j["meta"] = net.meta();
  for (int i = 0; i < net.size(); ++i) {
    const auto& n = net.node(i);
    nlohmann::json inputs = nlohmann::json::array();
    for (int k : n.inputs) inputs.push_back(net.node(k).name);
    nlohmann::json groups = nlohmann::json::array();
    for (const auto& seg : ca.layouts[i].segments) groups.push_back(ca.groups[seg.group].id);
    j["layers"].push_back({{"name", n.name},
                           {"op", graph::op_name(n.op)},
                           {"inputs", inputs},
                           {"shape", shapes[i]},
                           {"channel_groups", groups}});
  }
  for (const auto& g : ca.groups) {
    nlohmann::json producers = nlohmann::json::array();
    for (int p : g.producers) producers.push_back(net.node(p).name);
    nlohmann::json group = {
        {"id", g.id}, {"channels", g.channels}, {"producers", producers}, {"prunable", g.prunable}};
    if (!g.prunable) group["reason"] = g.reason;
    j["groups"].push_back(group);
  }
  const auto dp = policies::decision_points(net);
  for (const auto& c : dp.channels)
    j["decision_points"]["channels"].push_back(
        {{"id", c.id}, {"channels", c.channels}, {"layers", c.layers}, {"keep", "(0, 1]"}});
  for (const auto& l : dp.layers)
    j["decision_points"]["weight_bits"].push_back({{"layer", l.name},
                                                   {"op", l.op},
                                                   {"weights", l.weight_params},
                                                   {"bits", policies::kSupportedWeightBits}});
  if (json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("model %s: input %s, %lld params, %d nodes\n\n", model.c_str(),
              graph::shape_str(net.input_shape()).c_str(), static_cast<long long>(net.num_params()),
              net.size());
  std::printf("%-36s %-18s %-14s %s\n", "layer", "op", "output", "channel groups");
  for (const auto& l : j["layers"]) {
    std::string groups;
    for (const auto& g : l["channel_groups"])
      groups += (groups.empty() ? "" : "+") + g.get<std::string>();
    std::printf("%-36s %-18s %-14s %s\n", l["name"].get<std::string>().c_str(),
                l["op"].get<std::string>().c_str(),
                graph::shape_str(l["shape"].get<graph::Shape>()).c_str(), groups.c_str());
  }
  std::printf("\nchannel groups (%zu):\n", ca.groups.size());
  for (const auto& g : j["groups"]) {
    std::string producers;
    for (const auto& p : g["producers"])
      producers += (producers.empty() ? "" : ", ") + p.get<std::string>();
    std::printf("  %-32s %5lld ch  %s  [%s]\n", g["id"].get<std::string>().c_str(),
                g["channels"].get<long long>(),
                g["prunable"].get<bool>() ? "prunable"
                                          : ("fixed: " + g["reason"].get<std::string>()).c_str(),
                producers.c_str());
  }
  std::printf(
      "\ndecision points: %zu channel groups (keep fraction in (0, 1]), %zu layers "
      "(weight bits 32 or 8)\n",
      dp.channels.size(), dp.layers.size());
  return 0;
}

struct TrainArgs {
  std::string model = "vgg_small";
  std::string out;
  std::string data_dir = datasets::kFashionMnistDir;
  models::TrainOptions opts;
  bool json = false;
};

int cmd_train(const TrainArgs& a) {
  graph::Network net = models::make_model(a.model, models::default_options(a.model));
  net.meta()["seed"] = std::to_string(a.opts.seed);
  // Fail on an unwritable output before spending minutes on training.
  const auto parent = std::filesystem::path(a.out).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  const auto data = datasets::load_fashion_mnist(a.data_dir);
  std::fprintf(stderr,
               "[train] %s on Fashion-MNIST: %lld train / %lld validation images, %d "
               "epochs, %s lr %g, batch %lld, %d threads\n",
               a.model.c_str(), static_cast<long long>(data.train.size()),
               static_cast<long long>(data.validation.size()), a.opts.epochs,
               a.opts.optimizer.c_str(), a.opts.lr, static_cast<long long>(a.opts.batch_size),
               a.opts.threads);
  const auto r = models::train_model(net, data, a.opts);
  net.meta()["dataset"] = "fashion-mnist";
  net.meta()["epochs"] = std::to_string(a.opts.epochs);
  net.meta()["optimizer"] = a.opts.optimizer;
  net.meta()["test_accuracy"] = std::to_string(r.test_accuracy);
  net.meta()["validation_accuracy"] = std::to_string(r.validation_accuracy);
  graph::save_network(net, a.out);
  const nlohmann::json j = {{"model", a.model},
                            {"out", a.out},
                            {"epochs", a.opts.epochs},
                            {"optimizer", a.opts.optimizer},
                            {"lr", a.opts.lr},
                            {"batch_size", a.opts.batch_size},
                            {"seed", a.opts.seed},
                            {"threads", a.opts.threads},
                            {"steps", r.steps},
                            {"train_loss", r.train_loss},
                            {"validation_accuracy", r.validation_accuracy},
                            {"test_accuracy", r.test_accuracy},
                            {"seconds", r.seconds}};
  if (a.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("%s: test accuracy %.4f (validation %.4f) after %d epochs in %.0f s -> %s\n",
                a.model.c_str(), r.test_accuracy, r.validation_accuracy, a.opts.epochs, r.seconds,
                a.out.c_str());
  }
  return 0;
}

int cmd_search(const std::string& config_path, const std::string& out, bool json,
               const std::string& data_dir) {
  auto config = search::SearchConfig::load(config_path);
  if (!data_dir.empty()) config.data_dir = data_dir;
  search::RunOptions opts;
  opts.out_dir = out;
  const auto r = search::run_search(config, opts);
  if (json) {
    std::ifstream in(std::filesystem::path(out) / "front.json");
    std::cout << in.rdbuf();
  } else {
    std::printf(
        "Pareto front (%zu of %zu candidates; accuracy up, latency down, size down):\n%s"
        "written: %s/front.json, front.csv, evaluations.jsonl\n",
        r.front.size(), r.evaluations.size(), search::front_table(r).c_str(), out.c_str());
  }
  return 0;
}

struct CompressArgs {
  std::string model, policy, out, data_dir = datasets::kFashionMnistDir;
  int64_t channel_multiple = 1;
  bool no_eval = false;
  bool json = false;
};

int cmd_compress(const CompressArgs& a) {
  const graph::Network net = load_model_arg(a.model);
  const auto policy = policies::Policy::from_json(read_json_file(a.policy), a.policy);
  policies::ApplyOptions opts;
  opts.channel_multiple = a.channel_multiple;
  const auto c = policies::apply(net, policy, opts);
  std::filesystem::create_directories(a.out);
  const auto out = std::filesystem::path(a.out);
  graph::save_network(c.net, (out / "compressed.tfn").string());

  policies::CompressedNetwork original{net, {}, {}, {}};
  const auto before_shapes = graph::infer_shapes(net);
  const auto after_shapes = graph::infer_shapes(c.net);
  nlohmann::json layers = nlohmann::json::array();
  for (int i = 0; i < c.net.size(); ++i) {
    const auto& n = c.net.node(i);
    if (!graph::has_weights(n.op)) continue;
    const auto& w_before = net.node(i).params.at("weight");
    const auto& w_after = n.params.at("weight");
    layers.push_back({{"name", n.name},
                      {"op", graph::op_name(n.op)},
                      {"weight_before", w_before.shape},
                      {"weight_after", w_after.shape},
                      {"output_before", before_shapes[i]},
                      {"output_after", after_shapes[i]},
                      {"weight_bits", c.weight_bits.at(n.name)}});
  }
  const auto cost_before = evaluators::count_cost(original);
  const auto cost_after = evaluators::count_cost(c);
  nlohmann::json report = {{"model", a.model},
                           {"policy", policy.to_json()},
                           {"layers", layers},
                           {"kept_channels", c.kept_channels},
                           {"before",
                            {{"params", cost_before.params},
                             {"flops", cost_before.flops},
                             {"size_bytes", cost_before.size_bytes}}},
                           {"after",
                            {{"params", cost_after.params},
                             {"flops", cost_after.flops},
                             {"size_bytes", cost_after.size_bytes}}}};
  if (!a.no_eval) {
    const auto data = datasets::load_fashion_mnist(a.data_dir);
    graph::Executor before(net), after(c.net);
    report["before"]["test_accuracy"] =
        models::evaluate(before, data.test, data.mean, data.std).accuracy;
    report["after"]["test_accuracy"] =
        models::evaluate(after, data.test, data.mean, data.std).accuracy;
  }
  {
    std::ofstream f(out / "report.json");
    f << report.dump(2) << "\n";
  }
  if (a.json) {
    std::cout << report.dump(2) << "\n";
  } else {
    std::printf(
        "%s -> %s/compressed.tfn\n  params %lld -> %lld, MFLOPs %.2f -> %.2f, "
        "size %lld -> %lld bytes\n",
        a.model.c_str(), a.out.c_str(), static_cast<long long>(cost_before.params),
        static_cast<long long>(cost_after.params), cost_before.flops / 1e6, cost_after.flops / 1e6,
        static_cast<long long>(cost_before.size_bytes),
        static_cast<long long>(cost_after.size_bytes));
    if (!a.no_eval)
      std::printf("  test accuracy %.4f -> %.4f (no fine-tuning, no BN recalibration)\n",
                  report["before"]["test_accuracy"].get<double>(),
                  report["after"]["test_accuracy"].get<double>());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tightfit: find how to compress a trained network so it fits a hardware budget"};
  app.require_subcommand(1);
  app.set_version_flag("--version", TIGHTFIT_VERSION);

  auto* info = app.add_subcommand("info",
                                  "List a model's layers, shapes, channel groups and "
                                  "decision points");
  std::string info_model;
  bool info_json = false;
  info->add_option("--model", info_model, "Network file or zoo model name")->required();
  info->add_flag("--json", info_json, "Machine-readable output");

  auto* train = app.add_subcommand("train", "Train a zoo model on Fashion-MNIST and save it");
  TrainArgs ta;
  train->add_option("--model", ta.model, "Zoo model name")->capture_default_str();
  train->add_option("--out", ta.out, "Output network file (.tfn)")->required();
  train->add_option("--epochs", ta.opts.epochs, "Passes over the training split")
      ->capture_default_str();
  train->add_option("--optimizer", ta.opts.optimizer, "adam or sgd")->capture_default_str();
  train->add_option("--lr", ta.opts.lr, "Peak learning rate")->capture_default_str();
  train->add_option("--weight-decay", ta.opts.weight_decay, "L2 penalty")->capture_default_str();
  train->add_option("--batch-size", ta.opts.batch_size, "Images per step")->capture_default_str();
  train->add_option("--seed", ta.opts.seed, "Shuffling and dropout seed")->capture_default_str();
  train->add_option("--threads", ta.opts.threads, "LibTorch threads")->capture_default_str();
  train->add_option("--max-steps", ta.opts.max_steps, "Stop after this many steps (0: no limit)")
      ->capture_default_str();
  train->add_option("--data-dir", ta.data_dir, "Fashion-MNIST folder")->capture_default_str();
  train->add_flag("--json", ta.json, "Machine-readable result on stdout");

  auto* srch = app.add_subcommand("search", "Search compression policies; write the Pareto front");
  std::string config_path, out_dir, search_data_dir;
  bool search_json = false;
  srch->add_option("--config", config_path, "Search config (JSON), e.g. examples/demo.json")
      ->required();
  srch->add_option("--out", out_dir, "Output folder for front.json, front.csv, evaluations.jsonl")
      ->required();
  srch->add_option("--data-dir", search_data_dir, "Fashion-MNIST folder (overrides the config)");
  srch->add_flag("--json", search_json, "Print front.json on stdout instead of the table");

  auto* comp = app.add_subcommand("compress",
                                  "Apply a policy to a model; write the compressed "
                                  "network and a JSON report");
  CompressArgs ca;
  comp->add_option("--model", ca.model, "Network file or zoo model name")->required();
  comp->add_option("--policy", ca.policy, "Policy JSON {\"keep\": {...}, \"weight_bits\": {...}}")
      ->required();
  comp->add_option("--out", ca.out, "Output folder (compressed.tfn, report.json)")->required();
  comp->add_option("--channel-multiple", ca.channel_multiple, "Round kept channels to this")
      ->capture_default_str();
  comp->add_option("--data-dir", ca.data_dir, "Fashion-MNIST folder")->capture_default_str();
  comp->add_flag("--no-eval", ca.no_eval, "Skip the test-set accuracy");
  comp->add_flag("--json", ca.json, "Print the report on stdout");

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tightfit: error: %s; see `tightfit %s--help`\n", e.what(),
                 app.get_subcommands().empty()
                     ? ""
                     : (app.get_subcommands().front()->get_name() + " ").c_str());
    return kUserErrorExit;
  }

  try {
    if (*info) return cmd_info(info_model, info_json);
    if (*train) return cmd_train(ta);
    if (*comp) return cmd_compress(ca);
    if (*srch) return cmd_search(config_path, out_dir, search_json, search_data_dir);
  } catch (const InputError& e) {
    std::fprintf(stderr, "tightfit: error: %s\n", e.what());
    return kUserErrorExit;
  } catch (const std::filesystem::filesystem_error& e) {
    std::fprintf(stderr, "tightfit: error: %s; check the path and its permissions\n", e.what());
    return kUserErrorExit;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tightfit: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
