#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "core/errors.h"
#include "core/json.h"
#include "core/machine.h"
#include "graph/serialize.h"
#include "models/zoo.h"
#include "targets/target.h"

namespace tightfit::cli {

int cmd_train(const TrainArgs& a) {
  check_threads(a.opts.threads, "--threads");
  graph::Network net = models::make_model(a.model, models::default_options(a.model));
  net.meta()["seed"] = std::to_string(a.opts.seed);
  targets::check_batch_fits(net, a.opts.batch_size, "--batch-size");
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

}  // namespace tightfit::cli
