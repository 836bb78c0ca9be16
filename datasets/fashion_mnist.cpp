#include "datasets/fashion_mnist.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <random>

#include "core/errors.h"
#include "core/json.h"

namespace tightfit::datasets {

namespace {

constexpr uint32_t kIdxImagesMagic = 0x00000803;  // unsigned byte, 3 dimensions
constexpr uint32_t kIdxLabelsMagic = 0x00000801;  // unsigned byte, 1 dimension

/// Whole file, transparently gunzipped (gzread reads plain files as they are).
std::vector<uint8_t> read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw InputError("cannot open '" + path + "': check the path");
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.insert(out.end(), buf, buf + n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  const bool failed = n < 0 || (err != Z_OK && err != Z_STREAM_END);
  const std::string why = failed && msg ? msg : "";
  gzclose(f);
  if (failed)
    throw InputError("'" + path + "' is damaged (" + why + "); reinstall or re-download it");
  return out;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t pos) {
  return (uint32_t{b[pos]} << 24) | (uint32_t{b[pos + 1]} << 16) | (uint32_t{b[pos + 2]} << 8) |
         uint32_t{b[pos + 3]};
}

}  // namespace

ImageSet read_idx(const std::string& images_path, const std::string& labels_path) {
  const auto images = read_gz(images_path);
  const auto labels = read_gz(labels_path);
  if (images.size() < 16 || be32(images, 0) != kIdxImagesMagic)
    throw InputError("'" + images_path + "' is not an IDX image file (bad magic number)");
  if (labels.size() < 8 || be32(labels, 0) != kIdxLabelsMagic)
    throw InputError("'" + labels_path + "' is not an IDX label file (bad magic number)");
  ImageSet set;
  const uint64_t count = be32(images, 4);
  set.rows = be32(images, 8);
  set.cols = be32(images, 12);
  const uint64_t label_count = be32(labels, 4);
  if (count != label_count)
    throw InputError("'" + images_path + "' has " + std::to_string(count) + " images but '" +
                     labels_path + "' has " + std::to_string(label_count) + " labels");
  const uint64_t expected = 16 + count * set.rows * set.cols;
  if (images.size() != expected)
    throw InputError("'" + images_path + "' is truncated (" + std::to_string(images.size()) +
                     " of " + std::to_string(expected) + " bytes)");
  if (labels.size() != 8 + label_count) throw InputError("'" + labels_path + "' is truncated");
  set.pixels.assign(images.begin() + 16, images.end());
  set.labels.assign(labels.begin() + 8, labels.end());
  return set;
}

Split load_fashion_mnist(const std::string& dir, const SplitOptions& opts) {
  for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                           "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) {
    const auto path = std::filesystem::path(dir) / name;
    if (!std::filesystem::exists(path))
      throw InputError("Fashion-MNIST file '" + path.string() + "' is missing; install it with " +
                       "`apt-get install " + kFashionMnistPackage + "` or pass --data-dir");
  }
  const ImageSet full =
      read_idx(dir + "/train-images-idx3-ubyte.gz", dir + "/train-labels-idx1-ubyte.gz");
  return split_training_set(
      full, read_idx(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz"), opts);
}

FashionMnist FashionMnist::from_json(const nlohmann::json& j, const std::string& where) {
  return read_section<FashionMnist>(j, where);
}

}  // namespace tightfit::datasets
