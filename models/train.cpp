#include "models/train.h"

#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>

#include "core/errors.h"
#include "core/machine.h"
#include "core/timing.h"
#include "datasets/batches.h"

namespace tightfit::models {

EvalResult evaluate(graph::Executor& ex, const datasets::ImageSet& set,
                    const datasets::ChannelValues& mean, const datasets::ChannelValues& std,
                    int64_t limit, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = ex.training();
  ex.train(false);
  const int64_t n = limit > 0 ? std::min(limit, set.size()) : set.size();
  int64_t correct = 0;
  double loss_sum = 0;
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t end = std::min(begin + batch_size, n);
    auto batch = datasets::make_batch(set, {}, begin, end, mean, std);
    auto logits = ex.forward(batch.images);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, batch.labels,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    correct += logits.argmax(1).eq(batch.labels).sum().item<int64_t>();
  }
  ex.train(was_training);
  EvalResult r;
  r.images = n;
  r.accuracy = n ? static_cast<double>(correct) / static_cast<double>(n) : 0.0;
  r.loss = n ? loss_sum / static_cast<double>(n) : 0.0;
  return r;
}

at::Tensor distillation_loss(const at::Tensor& student_logits, const at::Tensor& teacher_logits,
                             double temperature) {
  TIGHTFIT_CHECK(temperature > 0, "distillation temperature " << temperature);
  const auto log_p_student = torch::log_softmax(student_logits / temperature, 1);
  const auto log_p_teacher = torch::log_softmax(teacher_logits / temperature, 1);
  // KL(p_t || p_s) = sum p_t (log p_t - log p_s), in log space so it is exactly 0 when equal.
  const auto kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(1).mean();
  return kl * (temperature * temperature);
}

TrainResult train_model(graph::Network& net, const datasets::Split& data,
                        const TrainOptions& opts) {
  if (opts.optimizer != "adam" && opts.optimizer != "sgd")
    throw ConfigError("unknown optimizer '" + opts.optimizer + "'; valid: adam, sgd");
  if (opts.epochs < 1 || opts.batch_size < 1 || !(opts.lr > 0))
    throw ConfigError("training needs epochs >= 1, batch_size >= 1 and lr > 0");
  if (opts.teacher &&
      (!(opts.distill_temperature > 0) || !(opts.distill_weight >= 0 && opts.distill_weight <= 1)))
    throw ConfigError("distillation needs temperature > 0 and a weight in [0, 1]");
  check_threads(opts.threads, "training's threads (--threads)");
  at::set_num_threads(opts.threads);
  const auto t0 = Clock::now();

  graph::Executor ex(net);
  ex.seed_dropout(opts.seed);  // not the global generator: trainings may run at once
  ex.constrain_weights(opts.masks, opts.weight_bits, opts.weight_quantizers);
  ex.train(true);
  std::optional<graph::Executor> teacher;
  if (opts.teacher) teacher.emplace(*opts.teacher);  // eval mode: its BN statistics stay fixed
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (opts.optimizer == "adam") {
    optimizer = std::make_unique<torch::optim::Adam>(
        ex.parameters(), torch::optim::AdamOptions(opts.lr).weight_decay(opts.weight_decay));
  } else {
    optimizer = std::make_unique<torch::optim::SGD>(
        ex.parameters(),
        torch::optim::SGDOptions(opts.lr).momentum(0.9).nesterov(true).weight_decay(
            opts.weight_decay));
  }

  const int64_t steps_per_epoch = (data.train.size() + opts.batch_size - 1) / opts.batch_size;
  int64_t total_steps = steps_per_epoch * opts.epochs;
  if (opts.max_steps > 0) total_steps = std::min(total_steps, opts.max_steps);
  const int64_t warmup = static_cast<int64_t>(opts.warmup_fraction * total_steps);

  // A live step counter on a terminal; in a log file only the per-epoch lines.
  const bool live = opts.progress && ::isatty(STDERR_FILENO);
  TrainResult result;
  int64_t step = 0;
  for (int epoch = 0; epoch < opts.epochs && step < total_steps; ++epoch) {
    datasets::Batches batches(data.train, opts.batch_size, data.mean, data.std,
                              opts.seed * 1000003ULL + static_cast<uint64_t>(epoch) + 1);
    double loss_sum = 0;
    int64_t loss_count = 0;
    for (int64_t b = 0; b < batches.count() && step < total_steps; ++b, ++step) {
      // Linear warm-up, then cosine decay to zero over the remaining steps.
      double lr = opts.lr;
      if (step < warmup) {
        lr *= static_cast<double>(step + 1) / static_cast<double>(warmup);
      } else {
        const double t = static_cast<double>(step - warmup) /
                         static_cast<double>(std::max<int64_t>(1, total_steps - warmup));
        lr *= 0.5 * (1.0 + std::cos(M_PI * t));
      }
      for (auto& group : optimizer->param_groups()) group.options().set_lr(lr);

      auto batch = batches.get(b);
      optimizer->zero_grad();
      const auto logits = ex.forward(batch.images);
      auto loss = torch::nn::functional::cross_entropy(logits, batch.labels);
      if (teacher) {
        at::Tensor soft;
        {
          torch::NoGradGuard no_grad;
          soft = teacher->forward(batch.images);
        }
        loss = (1.0 - opts.distill_weight) * loss +
               opts.distill_weight * distillation_loss(logits, soft, opts.distill_temperature);
      }
      loss.backward();
      optimizer->step();
      loss_sum += loss.item<double>();
      ++loss_count;
      if (live && (b % 20 == 0 || b + 1 == batches.count()))
        std::fprintf(stderr, "\r[train] epoch %d/%d  step %lld/%lld  loss %.4f  %.0fs   ",
                     epoch + 1, opts.epochs, static_cast<long long>(b + 1),
                     static_cast<long long>(batches.count()), loss_sum / loss_count,
                     seconds_since(t0));
    }
    result.train_loss = loss_count ? loss_sum / loss_count : 0.0;
    if (opts.progress) {
      const auto val = evaluate(ex, data.validation, data.mean, data.std);
      std::fprintf(stderr, "%s[train] epoch %d/%d  loss %.4f  validation accuracy %.4f  %.0fs\n",
                   live ? "\r" : "", epoch + 1, opts.epochs, result.train_loss, val.accuracy,
                   seconds_since(t0));
    }
  }
  result.steps = step;
  if (opts.final_evaluation) {
    result.validation_accuracy = evaluate(ex, data.validation, data.mean, data.std).accuracy;
    result.test_accuracy = evaluate(ex, data.test, data.mean, data.std).accuracy;
  }
  result.seconds = seconds_since(t0);
  ex.write_back(net);
  return result;
}

}  // namespace tightfit::models
