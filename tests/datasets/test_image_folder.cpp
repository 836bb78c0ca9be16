// The "image-folder" data set against torchvision: a tree of PNG and JPEG files written from
// Fashion-MNIST (make_image_folder.py, at test time) decodes, resizes and crops to what
// torchvision's ImageFolder with Resize and CenterCrop gives, is cached once, and the mistakes a
// user makes in such a tree end in one line naming the file or folder.

#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "../python_fixtures.h"
#include "core/errors.h"
#include "datasets/batches.h"
#include "datasets/dataset.h"
#include "datasets/fashion_mnist.h"
#include "datasets/image_folder.h"

namespace fs = std::filesystem;
using namespace tightfit;

namespace {

fs::path image_folder() {
  const fs::path dir = TIGHTFIT_IMAGE_FOLDER;
  return test::python_fixture(dir, "reference_36_32.bin",
                              "datasets/make_image_folder.py " +
                                  std::string(datasets::kFashionMnistDir) + " " + dir.string());
}

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("an image folder reads as torchvision's ImageFolder with Resize and CenterCrop",
          "[datasets][image-folder]") {
  const fs::path dir = image_folder();
  const fs::path root = dir / "images";
  for (const auto& f : fs::directory_iterator(root))
    if (f.path().filename().string().rfind(".tightfit-cache", 0) == 0) fs::remove(f.path());
  const nlohmann::json section = {{"root", root.string()}, {"resize", 36}, {"crop", 32}};
  const auto ds = datasets::make_dataset("image-folder", section);
  datasets::SplitOptions opts;
  opts.validation_count = 0;
  const auto split = ds->load(opts);
  REQUIRE(split.train.size() == 200);
  REQUIRE(split.test.size() == 50);
  CHECK(split.train.channels == 3);
  CHECK(split.train.rows == 32);
  CHECK(split.train.cols == 32);
  // Labels: classes in sorted folder order, 20 training images each.
  for (int64_t i = 0; i < split.train.size(); ++i) CHECK(split.train.labels[i] == i / 20);
  // Pixels: torchvision's (PIL's antialiased bilinear resize; ours is LibTorch's), up to the
  // rounding of the two resamplers (measured: mean 0.09 levels in 255, max 1).
  const auto ref = read_bytes(dir / "reference_36_32.bin");
  std::vector<uint8_t> ours = split.train.pixels;
  ours.insert(ours.end(), split.test.pixels.begin(), split.test.pixels.end());
  REQUIRE(ref.size() == ours.size());
  double total = 0;
  int worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const int d = std::abs(int(ref[i]) - int(ours[i]));
    total += d;
    worst = std::max(worst, d);
  }
  INFO("mean |diff| " << total / ref.size() << ", max " << worst);
  CHECK(total / ref.size() < 0.25);
  CHECK(worst <= 2);
  // Decoded once: the cache answers the second load with the same bytes.
  const fs::path cache = root / ".tightfit-cache-36-32.bin";
  REQUIRE(fs::exists(cache));
  const auto written = fs::last_write_time(cache);
  const auto again = ds->load(opts);
  CHECK(fs::last_write_time(cache) == written);
  CHECK(again.train.pixels == split.train.pixels);
  CHECK(again.test.labels == split.test.labels);
  // "validation": "val" scores on the val folder: all of train/ stays for training.
  nlohmann::json on_val = section;
  on_val["validation"] = "val";
  opts.validation_count = 5000;  // ignored: nothing is held out of train/
  const auto val = datasets::make_dataset("image-folder", on_val)->load(opts);
  CHECK(val.train.size() == 200);
  CHECK(val.validation.pixels == split.test.pixels);
  CHECK(val.test.labels == split.test.labels);
  on_val["validation"] = "train";
  CHECK_THROWS_WITH(datasets::make_dataset("image-folder", on_val),
                    Catch::Contains("validation is 'train'"));
}

TEST_CASE("an image folder a user got wrong is refused in one line", "[datasets][image-folder]") {
  const fs::path dir = image_folder();
  const fs::path bad = dir / "bad";
  fs::remove_all(bad);
  const auto copy_tree = [&] {
    fs::copy(dir / "images", bad, fs::copy_options::recursive);
    for (const auto& f : fs::directory_iterator(bad))
      if (f.is_regular_file()) fs::remove(f.path());
  };
  const auto load = [&] {
    datasets::SplitOptions opts;
    opts.validation_count = 10;
    return datasets::make_dataset("image-folder",
                                  {{"root", bad.string()}, {"resize", 36}, {"crop", 32}})
        ->load(opts);
  };
  // A truncated PNG names the file.
  copy_tree();
  const fs::path victim = bad / "train" / "3_dress" / "00003.png";
  fs::resize_file(victim, fs::file_size(victim) / 2);
  REQUIRE_THROWS_AS(load(), InputError);
  REQUIRE_THROWS_WITH(load(),
                      Catch::Contains(victim.string()) && Catch::Contains("cannot be decoded"));
  // A text file named .jpg.
  fs::remove_all(bad);
  copy_tree();
  std::ofstream(bad / "val" / "8_bag" / "zz.jpg") << "not an image";
  REQUIRE_THROWS_WITH(load(),
                      Catch::Contains("zz.jpg") && Catch::Contains("neither a JPEG nor a PNG"));
  // Train and val with different classes.
  fs::remove_all(bad);
  copy_tree();
  fs::remove_all(bad / "val" / "9_boot");
  REQUIRE_THROWS_WITH(load(),
                      Catch::Contains("train has classes") && Catch::Contains("but val has"));
  // No such folder; a crop larger than the resize.
  fs::remove_all(bad);
  REQUIRE_THROWS_WITH(load(), Catch::Contains("does not exist"));
  REQUIRE_THROWS_WITH(
      datasets::make_dataset("image-folder", {{"root", "x"}, {"resize", 32}, {"crop", 64}}),
      Catch::Contains("resize in [crop, 4096]"));
  REQUIRE_THROWS_WITH(datasets::make_dataset("image-folder", nlohmann::json::object()),
                      Catch::Contains(".root is missing"));
}

TEST_CASE("normalization takes one value or one per channel, as torchvision's Normalize does",
          "[datasets][image-folder]") {
  const fs::path root = image_folder() / "images";
  datasets::SplitOptions opts;
  opts.validation_count = 10;
  const auto load = [&](nlohmann::json extra) {
    nlohmann::json section = {{"root", root.string()}, {"resize", 36}, {"crop", 32}};
    section.update(extra);
    return datasets::make_dataset("image-folder", section)->load(opts);
  };
  // ImageNet's statistics, per channel: channel c of a batch is (x / 255 - mean[c]) / std[c].
  const auto split = load({{"mean", {0.485, 0.456, 0.406}}, {"std", {0.229, 0.224, 0.225}}});
  REQUIRE(split.mean == datasets::ChannelValues{0.485f, 0.456f, 0.406f});
  REQUIRE(split.std == datasets::ChannelValues{0.229f, 0.224f, 0.225f});
  const auto batch = datasets::make_batch(split.train, {}, 0, 4, split.mean, split.std);
  const auto pixels = torch::from_blob(const_cast<uint8_t*>(split.train.pixels.data()),
                                       {4, 3, 32, 32}, torch::kUInt8)
                          .to(torch::kFloat32);
  const auto mean = torch::tensor({0.485f, 0.456f, 0.406f}).view({1, 3, 1, 1});
  const auto std = torch::tensor({0.229f, 0.224f, 0.225f}).view({1, 3, 1, 1});
  CHECK((batch.images - (pixels / 255 - mean) / std).abs().max().item<float>() < 1e-5);
  // One value for every channel.
  const auto one = load({{"mean", 0.5}, {"std", 0.25}});
  CHECK(one.mean == datasets::ChannelValues{0.5f});
  CHECK(one.std == datasets::ChannelValues{0.25f});
  // Neither: measured per channel on the training pixels.
  const auto own = load(nlohmann::json::object());
  REQUIRE(own.mean.size() == 3);
  const auto train = torch::from_blob(const_cast<uint8_t*>(own.train.pixels.data()),
                                      {own.train.size(), 3, 32 * 32}, torch::kUInt8)
                         .to(torch::kFloat64) /
                     255;
  for (int c = 0; c < 3; ++c) {
    CHECK(own.mean[c] == Approx(train.select(1, c).mean().item<double>()).epsilon(1e-4));
    CHECK(own.std[c] ==
          Approx(train.select(1, c).std(/*unbiased=*/false).item<double>()).epsilon(1e-4));
  }
  // Mistakes: a list for another number of channels, a std of 0, mean without std.
  CHECK_THROWS_WITH(load({{"mean", {0.1, 0.2}}, {"std", {0.3, 0.3}}}),
                    Catch::Contains("data.mean has 2 values; the images have 3 channel(s)"));
  CHECK_THROWS_WITH(load({{"mean", 0.1}, {"std", {0.2, 0.0, 0.3}}}),
                    Catch::Contains("std has a value <= 0"));
  CHECK_THROWS_WITH(load({{"mean", {0.1, 0.2, 0.3}}}), Catch::Contains("mean and std together"));
  CHECK_THROWS_WITH(load({{"mean", "red"}, {"std", 1}}), Catch::Contains("data.mean"));
}
