#pragma once
// Training a network from scratch on an image classification split (Fashion-MNIST here): SGD
// with momentum or Adam, linear warm-up then cosine decay of the learning rate, seeded shuffling
// and dropout. Progress goes to stderr.

#include <cstdint>
#include <map>
#include <string>

#include "datasets/fashion_mnist.h"
#include "graph/executor.h"
#include "graph/network.h"

namespace tightfit::models {

struct TrainOptions {
  int epochs = 3;                  ///< passes over the training split
  int64_t batch_size = 128;        ///< images per step
  std::string optimizer = "adam";  ///< "adam" or "sgd" (momentum 0.9, Nesterov)
  double lr = 2e-3;                ///< peak learning rate
  double weight_decay = 0.0;       ///< L2 penalty (coupled, as torch.optim)
  double warmup_fraction = 0.05;   ///< share of steps with linear LR warm-up
  uint64_t seed = 1;               ///< shuffling and dropout
  int threads = 2;                 ///< LibTorch intra-op threads
  int64_t max_steps = 0;           ///< stop early after this many steps (0 = no limit)
  bool progress = true;            ///< progress line on stderr
  /// Fine-tuning a compressed network: pruning masks kept applied and weights fake-quantized with
  /// a straight-through estimator (graph::Executor::constrain_weights).
  std::map<std::string, graph::Tensor> masks;
  std::map<std::string, int> weight_bits;
  /// Layers trained through their own quantizer's grid instead of weight_bits' symmetric one.
  std::map<std::string, graph::WeightQuantizer> weight_quantizers;
  /// Knowledge distillation (Hinton et al., 2015) from `teacher` (eval mode, same input), when
  /// set: loss = (1 - distill_weight) x cross-entropy + distill_weight x distillation_loss(T).
  const graph::Network* teacher = nullptr;
  double distill_temperature = 4.0;  ///< T: softens both distributions
  double distill_weight = 0.5;       ///< share of the loss from the teacher's soft targets
  /// Score the whole validation and test splits at the end (a proxy scores its own subset).
  bool final_evaluation = true;
};

struct TrainResult {
  double train_loss = 0;  ///< mean loss of the last epoch
  double validation_accuracy = 0;
  double test_accuracy = 0;
  double seconds = 0;
  int64_t steps = 0;
};

/// Soft-target loss of distillation: T^2 x KL(softmax(teacher / T) || softmax(student / T)),
/// averaged over the batch. T^2 keeps its gradient on the scale of the cross-entropy's as T
/// grows. Zero exactly when the student's logits equal the teacher's.
at::Tensor distillation_loss(const at::Tensor& student_logits, const at::Tensor& teacher_logits,
                             double temperature);

/// Trains `net` in place (its parameters and BN statistics are replaced by the trained ones).
TrainResult train_model(graph::Network& net, const datasets::Split& data, const TrainOptions& opts);

struct EvalResult {
  double accuracy = 0;  ///< top-1, in [0, 1]
  double loss = 0;      ///< mean cross-entropy
  int64_t images = 0;
};

/// Top-1 accuracy and loss of `ex` (eval mode, no grad) on the first `limit` images of `set`
/// (all when limit <= 0).
EvalResult evaluate(graph::Executor& ex, const datasets::ImageSet& set,
                    const datasets::ChannelValues& mean, const datasets::ChannelValues& std,
                    int64_t limit = 0, int64_t batch_size = 500);

}  // namespace tightfit::models
