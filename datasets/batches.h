#pragma once
// Normalized LibTorch batches from an ImageSet: deterministic order, optional seeded shuffling.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "datasets/fashion_mnist.h"

namespace tightfit::datasets {

struct Batch {
  at::Tensor images;  ///< float32 {N, C, H, W}, (x / 255 - mean[c]) / std[c]
  at::Tensor labels;  ///< int64 {N}
};

/// Images [begin, end) of `order` (or of the set, when `order` is empty) as one batch, normalized
/// per channel (`mean` and `std` hold one value per channel, or one for all).
Batch make_batch(const ImageSet& set, const std::vector<int64_t>& order, int64_t begin, int64_t end,
                 const ChannelValues& mean, const ChannelValues& std);

/// Splits `set` into batches of `batch_size` (the last one may be smaller). With a non-zero
/// `shuffle_seed` the order is a seeded permutation, otherwise the file order.
/// `count` seeded batches of `batch_size` images from `set` (for calibration: activation ranges,
/// data-driven pruning criteria).
std::vector<Batch> sample_batches(const ImageSet& set, int64_t count, int64_t batch_size,
                                  const ChannelValues& mean, const ChannelValues& std,
                                  uint64_t seed);

class Batches {
 public:
  Batches(const ImageSet& set, int64_t batch_size, ChannelValues mean, ChannelValues std,
          uint64_t shuffle_seed = 0);
  int64_t count() const;
  Batch get(int64_t i) const;

 private:
  const ImageSet& set_;
  int64_t batch_size_;
  ChannelValues mean_, std_;
  std::vector<int64_t> order_;
};

}  // namespace tightfit::datasets
