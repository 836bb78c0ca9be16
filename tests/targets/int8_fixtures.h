#pragma once
// Fixtures shared by the int8 tests of the oneDNN engine (test_onednn.cpp) and of LibTorch's
// quantized engine (test_libtorch_int8.cpp): Fashion-MNIST, loaded once, 8-bit compressed
// networks calibrated on it, and the agreement of an int8 backend with LibTorch's fake-quant
// simulation on its test images.

#include <torch/torch.h>

#include <algorithm>
#include <functional>

#include "datasets/batches.h"
#include "datasets/fashion_mnist.h"
#include "graph/executor.h"
#include "graph/network.h"
#include "policies/compress.h"

namespace tightfit::test_support {

/// The Fashion-MNIST split, loaded once per test executable.
inline const datasets::Split& fashion() {
  static const datasets::Split split = datasets::load_fashion_mnist();
  return split;
}

/// `net` with `weight_bits` symmetric per-channel weights and 8-bit activations on every layer
/// (on a 7-bit grid with `reduce_range`), calibrated on 4 batches of the Fashion-MNIST training
/// split.
inline policies::CompressedNetwork quantized_8bit(const graph::Network& net, int weight_bits = 8,
                                                  bool reduce_range = false) {
  policies::Policy p;
  p.quantization.reduce_range = reduce_range;
  for (const auto& l : policies::decision_points(net).layers) {
    p.weight_bits[l.name] = weight_bits;
    p.act_bits[l.name] = 8;
  }
  const auto& data = fashion();
  policies::Calibration calib;
  for (const auto& b : datasets::sample_batches(data.train, 4, 64, data.mean, data.std, 1)) {
    calib.images.push_back(b.images);
    calib.labels.push_back(b.labels);
  }
  policies::ApplyOptions opts;
  opts.calibration = &calib;
  return policies::apply(net, p, opts);
}

/// How an int8 backend's outputs compare with LibTorch's fake-quant simulation.
struct Agreement {
  double agree = 0;          ///< share of images with the same top-1 class
  double backend_acc = 0;    ///< top-1 accuracy of the backend
  double reference_acc = 0;  ///< of LibTorch's fake-quant simulation (graph::Executor)
  double rel_error = 0;      ///< max |backend - reference| / max |reference| over all logits
};

/// `run` (a float batch -> its logits) against graph::Executor on `net`, over the first `count`
/// Fashion-MNIST test images in batches of `batch`.
inline Agreement agreement_on_fashion(const graph::Network& net,
                                      const std::function<at::Tensor(const at::Tensor&)>& run,
                                      int64_t count, int64_t batch) {
  torch::NoGradGuard no_grad;
  const auto& data = fashion();
  graph::Executor ex(net);
  ex.train(false);
  int64_t agree = 0, backend_right = 0, reference_right = 0;
  double max_diff = 0, max_ref = 0;
  for (int64_t begin = 0; begin < count; begin += batch) {
    const auto b = datasets::make_batch(data.test, {}, begin, begin + batch, data.mean, data.std);
    const auto x = b.images.contiguous();
    const auto ref = ex.forward(x).contiguous();
    const auto got = run(x).reshape(ref.sizes());
    const auto ref_top = ref.argmax(1), got_top = got.argmax(1);
    agree += ref_top.eq(got_top).sum().item<int64_t>();
    backend_right += got_top.eq(b.labels).sum().item<int64_t>();
    reference_right += ref_top.eq(b.labels).sum().item<int64_t>();
    max_diff = std::max(max_diff, (got - ref).abs().max().item<double>());
    max_ref = std::max(max_ref, ref.abs().max().item<double>());
  }
  Agreement a;
  const double n = static_cast<double>(count);
  a.agree = static_cast<double>(agree) / n;
  a.backend_acc = static_cast<double>(backend_right) / n;
  a.reference_acc = static_cast<double>(reference_right) / n;
  a.rel_error = max_diff / std::max(max_ref, 1e-12);
  return a;
}

}  // namespace tightfit::test_support
