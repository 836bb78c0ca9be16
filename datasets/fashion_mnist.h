#pragma once
// Fashion-MNIST read straight from the IDX .gz files of Debian's `dataset-fashion-mnist`
// package, split deterministically into train / validation (from the 60k training images) and
// the 10k test set. Images stay as bytes here; datasets/batches.h turns them into normalized
// LibTorch batches.

#include <cstdint>
#include <string>
#include <vector>

namespace tightfit::datasets {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr const char* kFashionMnistPackage = "dataset-fashion-mnist";
/// Mean and standard deviation of the Fashion-MNIST training pixels (scaled to [0, 1]).
inline constexpr float kFashionMnistMean = 0.2860f;
inline constexpr float kFashionMnistStd = 0.3530f;

/// A set of same-sized single- or multi-channel 8-bit images with class labels.
struct ImageSet {
  int64_t channels = 1;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> pixels;  ///< count x channels x rows x cols
  std::vector<uint8_t> labels;  ///< count

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t image_bytes() const { return channels * rows * cols; }
  /// The images at `indices`, in that order.
  ImageSet subset(const std::vector<int64_t>& indices) const;
};

/// Reads an IDX image file and its label file (both may be gzip-compressed). Throws InputError
/// naming the file on a missing, truncated or foreign file, or on mismatched counts.
ImageSet read_idx(const std::string& images_path, const std::string& labels_path);

struct Split {
  ImageSet train;
  ImageSet validation;
  ImageSet test;
  float mean = kFashionMnistMean;
  float std = kFashionMnistStd;
};

struct SplitOptions {
  int64_t validation_count = 5000;  ///< taken from the 60k training images
  uint64_t split_seed = 0;          ///< permutation seed of the train/validation split
};

/// Loads Fashion-MNIST from `dir` (default: the Debian package's folder). A missing file throws
/// InputError naming the file and the package that installs it.
Split load_fashion_mnist(const std::string& dir = kFashionMnistDir, const SplitOptions& opts = {});

}  // namespace tightfit::datasets
