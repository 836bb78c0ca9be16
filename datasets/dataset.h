#pragma once
// Data sets behind one interface: images with class labels, split deterministically into train,
// validation (held out of the training images) and test. Each data set is one file under
// datasets/ and is built by name from the `data` section of a config (Fashion-MNIST first; image
// folders and tensor files plug in the same way). Images stay as bytes here; datasets/batches.h
// turns them into normalized LibTorch batches.

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace tightfit::datasets {

/// Mean and standard deviation of the Fashion-MNIST training pixels (scaled to [0, 1]): the
/// normalization a Split has unless its data set says otherwise.
inline constexpr float kFashionMnistMean = 0.2860f;
inline constexpr float kFashionMnistStd = 0.3530f;

/// Per-channel values of a normalization (mean or std of pixels scaled to [0, 1]): one per image
/// channel, or one for every channel.
using ChannelValues = std::vector<float>;

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

struct Split {
  ImageSet train;
  ImageSet validation;
  ImageSet test;
  ChannelValues mean{kFashionMnistMean};  ///< inputs are (pixel / 255 - mean[c]) / std[c]
  ChannelValues std{kFashionMnistStd};
};

struct SplitOptions {
  int64_t validation_count = 5000;  ///< taken from the 60k training images
  uint64_t split_seed = 0;          ///< permutation seed of the train/validation split
};

/// Sets `split.mean` and `split.std` to the given values (one, or one per channel, as
/// torchvision's Normalize takes them), or where none is given to the training pixels' own per
/// channel (scaled to [0, 1]): the normalization of data sets that do not publish theirs.
/// ConfigError, naming `where`, when a list's length is neither 1 nor the images' channels or a
/// std is not > 0.
void set_normalization(Split& split, const std::optional<std::vector<double>>& mean,
                       const std::optional<std::vector<double>>& std, const std::string& where);
/// ConfigError, naming `where`, unless mean and std are given together or not at all.
void check_normalization_pair(const std::optional<std::vector<double>>& mean,
                              const std::optional<std::vector<double>>& std,
                              const std::string& where);

/// `train` split into train and validation as `opts` says (a seeded permutation, each part kept
/// in file order), with `test` as the test set. ConfigError when validation_count does not fit.
Split split_training_set(const ImageSet& train, ImageSet test, const SplitOptions& opts);

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::string name() const = 0;
  /// Reads the images (InputError naming a missing or malformed file) and splits them.
  virtual Split load(const SplitOptions& opts) const = 0;
  /// Its settings, for results' context.
  virtual nlohmann::json describe() const = 0;
};

/// What a data set may use besides its own config section.
struct DatasetContext {
  std::string where = "data";  ///< the section's place in its file, for messages
};

/// Builds data set `name` from its config section (unknown keys rejected); reads nothing yet.
std::unique_ptr<Dataset> make_dataset(const std::string& name, const nlohmann::json& section,
                                      const DatasetContext& context = {});
std::vector<std::string> dataset_names();

}  // namespace tightfit::datasets
