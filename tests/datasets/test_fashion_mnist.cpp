// Fashion-MNIST from the Debian package's IDX files: sizes, labels, a deterministic disjoint
// train/validation split, clear errors for missing or damaged files, and normalized batches.
// Reads ~30 MB, hence the [data] tag; fast enough for the default run.

#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/errors.h"
#include "datasets/batches.h"
#include "datasets/fashion_mnist.h"

namespace fs = std::filesystem;
using tightfit::ConfigError;
using tightfit::InputError;
using tightfit::datasets::Batch;
using tightfit::datasets::Batches;
using tightfit::datasets::ImageSet;
using tightfit::datasets::kFashionMnistDir;
using tightfit::datasets::load_fashion_mnist;
using tightfit::datasets::read_idx;
using tightfit::datasets::Split;
using tightfit::datasets::SplitOptions;

namespace {

constexpr int64_t kClasses = 10;

std::string data_file(const std::string& name) {
  return std::string(kFashionMnistDir) + "/" + name;
}

/// The default split, loaded once for all test cases.
const Split& default_split() {
  static const Split split = load_fashion_mnist();
  return split;
}

/// One image's pixels and label as a comparable value.
std::vector<uint8_t> sample(const ImageSet& set, int64_t i) {
  const int64_t bytes = set.image_bytes();
  std::vector<uint8_t> out(set.pixels.begin() + i * bytes, set.pixels.begin() + (i + 1) * bytes);
  out.push_back(set.labels[static_cast<size_t>(i)]);
  return out;
}

/// Multiset of the samples of `sets`.
std::map<std::vector<uint8_t>, int> samples(const std::vector<const ImageSet*>& sets) {
  std::map<std::vector<uint8_t>, int> out;
  for (const ImageSet* s : sets)
    for (int64_t i = 0; i < s->size(); ++i) ++out[sample(*s, i)];
  return out;
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("tightfit_test_datasets_" + std::to_string(std::random_device()()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) ==
          static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

/// A valid IDX pair with `n` images of 2x3 pixels.
std::pair<std::vector<uint8_t>, std::vector<uint8_t>> tiny_idx(uint8_t n) {
  std::vector<uint8_t> images = {0, 0, 8, 3, 0, 0, 0, n, 0, 0, 0, 2, 0, 0, 0, 3};
  for (int i = 0; i < n * 6; ++i) images.push_back(static_cast<uint8_t>(i));
  std::vector<uint8_t> labels = {0, 0, 8, 1, 0, 0, 0, n};
  for (int i = 0; i < n; ++i) labels.push_back(static_cast<uint8_t>(i % kClasses));
  return {images, labels};
}

}  // namespace

TEST_CASE("the IDX reader reads the Fashion-MNIST files", "[datasets][data]") {
  const ImageSet train =
      read_idx(data_file("train-images-idx3-ubyte.gz"), data_file("train-labels-idx1-ubyte.gz"));
  const ImageSet test =
      read_idx(data_file("t10k-images-idx3-ubyte.gz"), data_file("t10k-labels-idx1-ubyte.gz"));
  for (const ImageSet* set : {&train, &test}) {
    CHECK(set->channels == 1);
    CHECK(set->rows == 28);
    CHECK(set->cols == 28);
    CHECK(set->pixels.size() == static_cast<size_t>(set->size() * 28 * 28));
    std::array<int64_t, kClasses> counts{};
    for (uint8_t l : set->labels) {
      REQUIRE(l < kClasses);
      ++counts[l];
    }
    // Fashion-MNIST is balanced: 6000 / 1000 of each class.
    for (int64_t c = 0; c < kClasses; ++c) CHECK(counts[c] == set->size() / kClasses);
    // Real images: not all black, full 8-bit range.
    CHECK(*std::max_element(set->pixels.begin(), set->pixels.end()) == 255);
    CHECK(*std::min_element(set->pixels.begin(), set->pixels.end()) == 0);
  }
  CHECK(train.size() == 60000);
  CHECK(test.size() == 10000);
}

TEST_CASE("the train/validation split is 55000/5000, deterministic and disjoint",
          "[datasets][data]") {
  const Split& split = default_split();
  CHECK(split.train.size() == 55000);
  CHECK(split.validation.size() == 5000);
  CHECK(split.test.size() == 10000);
  CHECK(split.mean == tightfit::datasets::ChannelValues{0.2860f});
  CHECK(split.std == tightfit::datasets::ChannelValues{0.3530f});
  // Every class is in the validation set.
  std::array<int64_t, kClasses> counts{};
  for (uint8_t l : split.validation.labels) ++counts[l];
  for (int64_t c = 0; c < kClasses; ++c) CHECK(counts[c] > 300);

  // Same seed, same split.
  const Split again = load_fashion_mnist();
  CHECK(again.validation.pixels == split.validation.pixels);
  CHECK(again.validation.labels == split.validation.labels);
  CHECK(again.train.labels == split.train.labels);

  // Train and validation partition the 60k training images exactly (as multisets, since
  // Fashion-MNIST has a few duplicate images).
  const ImageSet full =
      read_idx(data_file("train-images-idx3-ubyte.gz"), data_file("train-labels-idx1-ubyte.gz"));
  CHECK(samples({&split.train, &split.validation}) == samples({&full}));

  // Another seed, another validation set of the same size.
  SplitOptions other;
  other.split_seed = 1;
  other.validation_count = 1000;
  const Split s1 = load_fashion_mnist(kFashionMnistDir, other);
  CHECK(s1.validation.size() == 1000);
  CHECK(s1.train.size() == 59000);
  CHECK(s1.validation.pixels != std::vector<uint8_t>(split.validation.pixels.begin(),
                                                     split.validation.pixels.begin() + 1000 * 784));

  SplitOptions bad;
  bad.validation_count = 60000;
  REQUIRE_THROWS_AS(load_fashion_mnist(kFashionMnistDir, bad), ConfigError);
  REQUIRE_THROWS_WITH(load_fashion_mnist(kFashionMnistDir, bad),
                      Catch::Contains("validation_count 60000"));
}

TEST_CASE("a missing folder names the Debian package", "[datasets]") {
  TempDir dir;
  const std::string missing = dir.file("no-such-dir");
  REQUIRE_THROWS_AS(load_fashion_mnist(missing), InputError);
  REQUIRE_THROWS_WITH(load_fashion_mnist(missing),
                      Catch::Contains("dataset-fashion-mnist") &&
                          Catch::Contains("train-images-idx3-ubyte.gz") &&
                          Catch::Contains(missing));
  REQUIRE_THROWS_WITH(read_idx(dir.file("x.gz"), dir.file("y.gz")),
                      Catch::Contains("cannot open") && Catch::Contains(dir.file("x.gz")));
}

TEST_CASE("damaged, foreign and inconsistent IDX files are InputErrors", "[datasets]") {
  TempDir dir;
  const auto [images, labels] = tiny_idx(4);
  const std::string img = dir.file("img.gz"), lab = dir.file("lab.gz");
  write_gz(img, images);
  write_gz(lab, labels);

  SECTION("a valid pair reads back, gzipped or plain") {
    const ImageSet set = read_idx(img, lab);
    CHECK(set.size() == 4);
    CHECK(set.rows == 2);
    CHECK(set.cols == 3);
    CHECK(set.pixels[7] == 7);
    CHECK(set.labels == std::vector<uint8_t>{0, 1, 2, 3});
    write_bytes(dir.file("img.raw"), images);
    write_bytes(dir.file("lab.raw"), labels);
    CHECK(read_idx(dir.file("img.raw"), dir.file("lab.raw")).pixels == set.pixels);
  }
  SECTION("a truncated .gz") {
    const auto gz = read_bytes(img);
    for (size_t len : {gz.size() / 2, gz.size() - 4}) {
      INFO("cut at " << len << " of " << gz.size());
      write_bytes(dir.file("cut.gz"), std::vector<uint8_t>(gz.begin(), gz.begin() + len));
      REQUIRE_THROWS_AS(read_idx(dir.file("cut.gz"), lab), InputError);
      REQUIRE_THROWS_WITH(read_idx(dir.file("cut.gz"), lab), Catch::Contains(dir.file("cut.gz")));
    }
  }
  SECTION("a truncated real .gz") {
    const auto gz = read_bytes(data_file("t10k-labels-idx1-ubyte.gz"));
    write_bytes(dir.file("cut.gz"), std::vector<uint8_t>(gz.begin(), gz.begin() + gz.size() / 2));
    REQUIRE_THROWS_AS(read_idx(img, dir.file("cut.gz")), InputError);
  }
  SECTION("a corrupted .gz") {
    auto gz = read_bytes(img);
    gz[gz.size() - 6] ^= 0xff;  // inside the CRC-32 trailer
    write_bytes(dir.file("bad.gz"), gz);
    REQUIRE_THROWS_AS(read_idx(dir.file("bad.gz"), lab), InputError);
  }
  SECTION("a foreign file") {
    std::vector<uint8_t> text(200, 'x');
    write_bytes(dir.file("text.gz"), text);
    REQUIRE_THROWS_WITH(read_idx(dir.file("text.gz"), lab),
                        Catch::Contains("not an IDX image file"));
    REQUIRE_THROWS_WITH(read_idx(img, dir.file("text.gz")),
                        Catch::Contains("not an IDX label file"));
    // Labels passed as images.
    REQUIRE_THROWS_AS(read_idx(lab, img), InputError);
  }
  SECTION("raw IDX data shorter than its header says") {
    auto cut = images;
    cut.resize(cut.size() - 1);
    write_gz(dir.file("short.gz"), cut);
    REQUIRE_THROWS_WITH(read_idx(dir.file("short.gz"), lab), Catch::Contains("truncated"));
    auto short_labels = labels;
    short_labels.pop_back();
    write_gz(dir.file("short_labels.gz"), short_labels);
    REQUIRE_THROWS_WITH(read_idx(img, dir.file("short_labels.gz")), Catch::Contains("truncated"));
  }
  SECTION("image and label counts differ") {
    write_gz(dir.file("lab5.gz"), tiny_idx(5).second);
    REQUIRE_THROWS_WITH(read_idx(img, dir.file("lab5.gz")),
                        Catch::Contains("4 images") && Catch::Contains("5 labels"));
  }
  SECTION("a folder whose files are damaged") {
    for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"})
      write_bytes(dir.file(name), std::vector<uint8_t>(100, 0));
    REQUIRE_THROWS_AS(load_fashion_mnist(dir.path()), InputError);
  }
}

TEST_CASE("batches are normalized float tensors with int64 labels", "[datasets][data]") {
  const Split& split = default_split();
  const ImageSet& val = split.validation;
  constexpr int64_t kBatch = 128;
  const Batches batches(val, kBatch, split.mean, split.std);
  CHECK(batches.count() == (5000 + kBatch - 1) / kBatch);

  const Batch first = batches.get(0);
  CHECK(first.images.sizes() == at::IntArrayRef({kBatch, 1, 28, 28}));
  CHECK(first.images.scalar_type() == at::kFloat);
  CHECK(first.labels.sizes() == at::IntArrayRef({kBatch}));
  CHECK(first.labels.scalar_type() == at::kLong);
  // Unshuffled: file order, (x / 255 - mean) / std.
  for (int64_t i : {0, 5, 127}) {
    CHECK(first.labels[i].item<int64_t>() == val.labels[static_cast<size_t>(i)]);
    for (int64_t p : {0, 300, 783}) {
      const float x = val.pixels[static_cast<size_t>(i * 784 + p)];
      CHECK(first.images[i][0][p / 28][p % 28].item<float>() ==
            Approx((x / 255.0f - split.mean[0]) / split.std[0]).margin(1e-5));
    }
  }
  CHECK(first.images.min().item<float>() == Approx(-split.mean[0] / split.std[0]).margin(1e-5));

  const Batch last = batches.get(batches.count() - 1);
  CHECK(last.images.size(0) == 5000 - (batches.count() - 1) * kBatch);

  // Over the whole validation set the normalized pixels are roughly zero-mean, unit-variance.
  at::Tensor all = torch::cat({first.images, batches.get(1).images, batches.get(2).images});
  CHECK(std::abs(all.mean().item<double>()) < 0.1);
  CHECK(all.std().item<double>() == Approx(1.0).margin(0.1));

  // A shuffle seed permutes deterministically; labels still match their images.
  const Batches shuffled(val, kBatch, split.mean, split.std, 7);
  const Batches shuffled_again(val, kBatch, split.mean, split.std, 7);
  const Batch s = shuffled.get(0);
  CHECK(torch::equal(s.images, shuffled_again.get(0).images));
  CHECK_FALSE(torch::equal(s.labels, first.labels));
  int64_t label_sum = 0;
  for (int64_t b = 0; b < shuffled.count(); ++b)
    label_sum += shuffled.get(b).labels.sum().item<int64_t>();
  int64_t expected_sum = 0;
  for (uint8_t l : val.labels) expected_sum += l;
  CHECK(label_sum == expected_sum);
}
