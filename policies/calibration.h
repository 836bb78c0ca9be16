#pragma once
// Calibration data: a few batches drawn from the training split, used by data-driven pruning
// criteria (activation statistics, gradients, ThiNet's reconstruction) and by activation
// quantization (ranges). The caller draws them; policies/ never reads data sets itself.

#include <ATen/core/Tensor.h>

#include <vector>

namespace tightfit::policies {

struct Calibration {
  std::vector<at::Tensor> images;  ///< float32 {N, C, H, W}, normalized like training
  std::vector<at::Tensor> labels;  ///< int64 {N}, one per batch in `images`
  bool empty() const { return images.empty(); }
};

}  // namespace tightfit::policies
