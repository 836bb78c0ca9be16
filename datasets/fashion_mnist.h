#pragma once
// Fashion-MNIST read straight from the IDX .gz files of Debian's `dataset-fashion-mnist`
// package, split deterministically into train / validation (from the 60k training images) and
// the 10k test set. Images stay as bytes here; datasets/batches.h turns them into normalized
// LibTorch batches.

#include <string>

#include "datasets/dataset.h"

namespace tightfit::datasets {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr const char* kFashionMnistPackage = "dataset-fashion-mnist";

/// Reads an IDX image file and its label file (both may be gzip-compressed). Throws InputError
/// naming the file on a missing, truncated or foreign file, or on mismatched counts.
ImageSet read_idx(const std::string& images_path, const std::string& labels_path);

/// Loads Fashion-MNIST from `dir` (default: the Debian package's folder). A missing file throws
/// InputError naming the file and the package that installs it.
Split load_fashion_mnist(const std::string& dir = kFashionMnistDir, const SplitOptions& opts = {});

/// The data set "fashion-mnist": {"dir": FOLDER} (default: the Debian package's).
class FashionMnist : public Dataset {
 public:
  template <typename Fields>
  void fields(Fields& f) {
    f("dir", dir_);
  }
  static FashionMnist from_json(const nlohmann::json& j, const std::string& where);
  std::string name() const override { return "fashion-mnist"; }
  Split load(const SplitOptions& opts) const override { return load_fashion_mnist(dir_, opts); }
  nlohmann::json describe() const override { return {{"name", name()}, {"dir", dir_}}; }

 private:
  std::string dir_ = kFashionMnistDir;
};

}  // namespace tightfit::datasets
