#pragma once
// The data set "tensors": images and labels a user saved from Python with
//
//   torch.save({"images": images, "labels": labels}, "train.pt")
//
// images N x C x H x W (uint8, or float in [0, 1]), labels N (int64 class indices), read with
// LibTorch's pickle loader. The validation split is held out of the training file as for every
// data set; without a test file the test set is that validation split.

#include <optional>
#include <string>

#include "datasets/dataset.h"

namespace tightfit::datasets {

/// The images and labels of a tensor file. InputError naming the file and what is wrong: not a
/// torch.save file, no "images" / "labels" entry, shapes that disagree, floats outside [0, 1],
/// labels outside [0, 255].
ImageSet read_tensor_file(const std::string& path);

/// {"name": "tensors", "train": FILE, "test": FILE (optional), "mean": M, "std": S (one value or
/// one per channel; optional: measured per channel on the training pixels)}.
class TensorFile : public Dataset {
 public:
  template <typename Fields>
  void fields(Fields& f) {
    f("train", train_);
    f("test", test_);
    f("mean", mean_);
    f("std", std_);
  }
  static TensorFile from_json(const nlohmann::json& j, const std::string& where);
  std::string name() const override { return "tensors"; }
  Split load(const SplitOptions& opts) const override;
  nlohmann::json describe() const override;

 private:
  std::string train_, test_;
  std::optional<std::vector<double>> mean_, std_;  ///< one value, or one per channel
  std::string where_ = "data";                     ///< the section's place, for messages
};

}  // namespace tightfit::datasets
