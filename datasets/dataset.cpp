#include "datasets/dataset.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/errors.h"

namespace tightfit::datasets {

ImageSet ImageSet::subset(const std::vector<int64_t>& indices) const {
  ImageSet out;
  out.channels = channels;
  out.rows = rows;
  out.cols = cols;
  const int64_t bytes = image_bytes();
  out.pixels.resize(static_cast<size_t>(indices.size() * bytes));
  out.labels.resize(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    const int64_t src = indices[i];
    std::copy_n(pixels.begin() + src * bytes, bytes, out.pixels.begin() + i * bytes);
    out.labels[i] = labels[src];
  }
  return out;
}

Split split_training_set(const ImageSet& full, ImageSet test, const SplitOptions& opts) {
  if (opts.validation_count < 0 || opts.validation_count >= full.size())
    throw ConfigError("validation_count " + std::to_string(opts.validation_count) +
                      " must be in [0, " + std::to_string(full.size()) + ")");
  std::vector<int64_t> order(static_cast<size_t>(full.size()));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(opts.split_seed);
  std::shuffle(order.begin(), order.end(), rng);
  const auto cut = order.begin() + opts.validation_count;
  std::vector<int64_t> val_idx(order.begin(), cut), train_idx(cut, order.end());
  std::sort(val_idx.begin(), val_idx.end());
  std::sort(train_idx.begin(), train_idx.end());
  Split split;
  split.train = full.subset(train_idx);
  split.validation = full.subset(val_idx);
  split.test = std::move(test);
  return split;
}

void set_normalization(Split& split, std::optional<double> mean, std::optional<double> std) {
  double sum = 0, sq = 0;
  for (uint8_t p : split.train.pixels) {
    const double v = p / 255.0;
    sum += v;
    sq += v * v;
  }
  const double n = static_cast<double>(std::max<size_t>(split.train.pixels.size(), 1));
  const double own_mean = sum / n;
  const double own_std = std::sqrt(std::max(sq / n - own_mean * own_mean, 1e-12));
  split.mean = static_cast<float>(mean.value_or(own_mean));
  split.std = static_cast<float>(std.value_or(own_std));
}

}  // namespace tightfit::datasets
