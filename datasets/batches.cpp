#include "datasets/batches.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "core/errors.h"

namespace tightfit::datasets {

Batch make_batch(const ImageSet& set, const std::vector<int64_t>& order, int64_t begin, int64_t end,
                 float mean, float std) {
  TIGHTFIT_CHECK(begin >= 0 && begin < end && end <= set.size(), "batch range");
  const int64_t n = end - begin;
  const int64_t bytes = set.image_bytes();
  auto images = torch::empty({n, set.channels, set.rows, set.cols}, torch::kFloat32);
  auto labels = torch::empty({n}, torch::kInt64);
  float* dst = images.data_ptr<float>();
  int64_t* lab = labels.data_ptr<int64_t>();
  const float scale = 1.0f / (255.0f * std);
  const float shift = mean / std;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t src = order.empty() ? begin + i : order[static_cast<size_t>(begin + i)];
    const uint8_t* p = set.pixels.data() + src * bytes;
    for (int64_t k = 0; k < bytes; ++k) dst[i * bytes + k] = p[k] * scale - shift;
    lab[i] = set.labels[static_cast<size_t>(src)];
  }
  return {images, labels};
}

std::vector<Batch> sample_batches(const ImageSet& set, int64_t count, int64_t batch_size,
                                  float mean, float std, uint64_t seed) {
  Batches batches(set, batch_size, mean, std, seed == 0 ? 1 : seed);
  std::vector<Batch> out;
  for (int64_t b = 0; b < std::min(count, batches.count()); ++b) out.push_back(batches.get(b));
  return out;
}

Batches::Batches(const ImageSet& set, int64_t batch_size, float mean, float std,
                 uint64_t shuffle_seed)
    : set_(set), batch_size_(batch_size), mean_(mean), std_(std) {
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
