#include "datasets/batches.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "core/errors.h"

namespace tightfit::datasets {

Batch make_batch(const ImageSet& set, const std::vector<int64_t>& order, int64_t begin, int64_t end,
                 const ChannelValues& mean, const ChannelValues& std) {
  TIGHTFIT_CHECK(begin >= 0 && begin < end && end <= set.size(), "batch range");
  const auto per_channel = [&](const ChannelValues& v, int64_t c) {
    TIGHTFIT_CHECK(
        v.size() == 1 || static_cast<int64_t>(v.size()) == set.channels,
        "normalization of " << v.size() << " values for " << set.channels << " channels");
    return v.size() == 1 ? v[0] : v[static_cast<size_t>(c)];
  };
  const int64_t plane = set.rows * set.cols;
  std::vector<float> scale(static_cast<size_t>(set.channels)), shift(scale.size());
  for (int64_t c = 0; c < set.channels; ++c) {
    scale[c] = 1.0f / (255.0f * per_channel(std, c));
    shift[c] = per_channel(mean, c) / per_channel(std, c);
  }
  const int64_t n = end - begin;
  const int64_t bytes = set.image_bytes();
  auto images = torch::empty({n, set.channels, set.rows, set.cols}, torch::kFloat32);
  auto labels = torch::empty({n}, torch::kInt64);
  float* dst = images.data_ptr<float>();
  int64_t* lab = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t src = order.empty() ? begin + i : order[static_cast<size_t>(begin + i)];
    const uint8_t* p = set.pixels.data() + src * bytes;
    for (int64_t c = 0; c < set.channels; ++c)
      for (int64_t k = c * plane; k < (c + 1) * plane; ++k)
        dst[i * bytes + k] = p[k] * scale[c] - shift[c];
    lab[i] = set.labels[static_cast<size_t>(src)];
  }
  return {images, labels};
}

std::vector<Batch> sample_batches(const ImageSet& set, int64_t count, int64_t batch_size,
                                  const ChannelValues& mean, const ChannelValues& std,
                                  uint64_t seed) {
  Batches batches(set, batch_size, mean, std, seed == 0 ? 1 : seed);
  std::vector<Batch> out;
  for (int64_t b = 0; b < std::min(count, batches.count()); ++b) out.push_back(batches.get(b));
  return out;
}

Batches::Batches(const ImageSet& set, int64_t batch_size, ChannelValues mean, ChannelValues std,
                 uint64_t shuffle_seed)
    : set_(set), batch_size_(batch_size), mean_(std::move(mean)), std_(std::move(std)) {
  TIGHTFIT_CHECK(batch_size > 0, "batch size must be positive");
  if (shuffle_seed != 0) {
    order_.resize(static_cast<size_t>(set.size()));
    std::iota(order_.begin(), order_.end(), 0);
    std::mt19937_64 rng(shuffle_seed);
    std::shuffle(order_.begin(), order_.end(), rng);
  }
}

int64_t Batches::count() const { return (set_.size() + batch_size_ - 1) / batch_size_; }

Batch Batches::get(int64_t i) const {
  const int64_t begin = i * batch_size_;
  return make_batch(set_, order_, begin, std::min(begin + batch_size_, set_.size()), mean_, std_);
}

}  // namespace tightfit::datasets
