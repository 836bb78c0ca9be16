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

void check_normalization_pair(const std::optional<std::vector<double>>& mean,
                              const std::optional<std::vector<double>>& std,
                              const std::string& where) {
  if (mean.has_value() != std.has_value())
    throw ConfigError(where +
                      ": give mean and std together (or neither: measured per channel on "
                      "the training images)");
}

void set_normalization(Split& split, const std::optional<std::vector<double>>& mean,
                       const std::optional<std::vector<double>>& std, const std::string& where) {
  const ImageSet& t = split.train;
  const auto given = [&](const char* key, const std::vector<double>& v) {
    if (v.size() != 1 && static_cast<int64_t>(v.size()) != t.channels)
      throw ConfigError(where + "." + key + " has " + std::to_string(v.size()) +
                        " values; the images have " + std::to_string(t.channels) +
                        " channel(s): give one value, or one per channel");
    return ChannelValues(v.begin(), v.end());
  };
  if (mean) split.mean = given("mean", *mean);
  if (std) {
    split.std = given("std", *std);
    for (float s : split.std)
      if (!(s > 0)) throw ConfigError(where + ".std has a value <= 0; each must be > 0");
  }
  if (mean && std) return;
  // Measured per channel on the training pixels.
  const int64_t plane = t.rows * t.cols;
  ChannelValues own_mean, own_std;
  for (int64_t c = 0; c < t.channels; ++c) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < t.size(); ++i) {
      const uint8_t* p = t.pixels.data() + i * t.image_bytes() + c * plane;
      for (int64_t k = 0; k < plane; ++k) {
        const double v = p[k] / 255.0;
        sum += v;
        sq += v * v;
      }
    }
    const double n = static_cast<double>(std::max<int64_t>(t.size() * plane, 1));
    own_mean.push_back(static_cast<float>(sum / n));
    own_std.push_back(static_cast<float>(std::sqrt(std::max(sq / n - sum / n * (sum / n), 1e-12))));
  }
  if (!mean) split.mean = own_mean;
  if (!std) split.std = own_std;
}

}  // namespace tightfit::datasets
