#pragma once
// The data set "image-folder": a user's images in torchvision's ImageFolder layout,
//
//   ROOT/train/CLASS/*.jpg|*.jpeg|*.png     ROOT/val/CLASS/...
//
// classes in sorted order as torchvision numbers them. Each image is decoded with the Debian-
// packaged libraries (libjpeg-turbo, libpng), converted to RGB as ImageFolder's loader does,
// resized so that its shorter side is `resize` (bilinear with antialiasing) and center-cropped to
// `crop` x `crop`, as transforms.Resize and transforms.CenterCrop do. Images are decoded once, in
// parallel, into a uint8 cache file (ROOT/.tightfit-cache-RESIZE-CROP.bin, or `cache`) keyed by
// the files' names, sizes and modification times, so a search never decodes twice.

#include <optional>
#include <string>

#include "datasets/dataset.h"

namespace tightfit::datasets {

struct ImageFolderOptions {
  int64_t resize = 64;  ///< shorter side after resizing
  int64_t crop = 64;    ///< square center crop
};

/// The sorted class folders of `dir`; InputError when there are none or more than 256.
std::vector<std::string> image_folder_classes(const std::string& dir);

/// {"name": "image-folder", "root": DIR, "resize": 64, "crop": 64, "mean", "std" (one value or
/// one per channel, e.g. [0.485, 0.456, 0.406]; optional: measured per channel on the training
/// pixels), "cache": FILE (optional), "validation": "split" (held out
/// of train/ as the config's validation_count says) or "val" (candidates are scored on the val/
/// folder, which is also the test set: what a Python evaluation of the same folder reproduces)}.
class ImageFolder : public Dataset {
 public:
  template <typename Fields>
  void fields(Fields& f) {
    f("root", root_);
    f("resize", opts_.resize);
    f("crop", opts_.crop);
    f("mean", mean_);
    f("std", std_);
    f("cache", cache_);
    f("validation", validation_);
  }
  static ImageFolder from_json(const nlohmann::json& j, const std::string& where);
  std::string name() const override { return "image-folder"; }
  Split load(const SplitOptions& opts) const override;
  nlohmann::json describe() const override;

 private:
  std::string root_, cache_;
  std::string validation_ = "split";  ///< "split" (from train/) or "val" (the val/ folder)
  ImageFolderOptions opts_;
  std::optional<std::vector<double>> mean_, std_;  ///< one value, or one per channel
  std::string where_ = "data";                     ///< the section's place, for messages
};

}  // namespace tightfit::datasets
