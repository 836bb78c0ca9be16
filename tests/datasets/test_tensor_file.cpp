// The "tensors" data set: files written in Python with torch.save({"images", "labels"}) from
// Fashion-MNIST (by make_tensor_files.py at test time) read back to the same bytes, and the
// mistakes a user makes in them refused in one line naming the file.

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "../python_fixtures.h"
#include "core/errors.h"
#include "datasets/dataset.h"
#include "datasets/fashion_mnist.h"
#include "datasets/tensor_file.h"

namespace fs = std::filesystem;
using namespace tightfit;

namespace {

fs::path tensor_files() {
  const fs::path dir = TIGHTFIT_TENSOR_FILES;
  return test::python_fixture(dir, "list.pt",
                              "datasets/make_tensor_files.py " +
                                  std::string(datasets::kFashionMnistDir) + " " + dir.string());
}

}  // namespace

TEST_CASE("tensor files saved by torch.save read back to the images they were made from",
          "[datasets][tensors]") {
  const fs::path dir = tensor_files();
  const auto fm =
      datasets::read_idx(std::string(datasets::kFashionMnistDir) + "/train-images-idx3-ubyte.gz",
                         std::string(datasets::kFashionMnistDir) + "/train-labels-idx1-ubyte.gz");
  for (const char* file : {"train_u8.pt", "train_float.pt"}) {
    INFO(file);
    const auto set = datasets::read_tensor_file((dir / file).string());
    REQUIRE(set.size() == 3000);
    CHECK(set.channels == 1);
    CHECK(set.rows == 28);
    CHECK(set.cols == 28);
    CHECK(std::equal(set.pixels.begin(), set.pixels.end(), fm.pixels.begin()));
    CHECK(std::equal(set.labels.begin(), set.labels.end(), fm.labels.begin()));
  }
  // As a data set: the split holds validation_count out of the training file, the test file is
  // the test set, and the normalization is measured on the training pixels.
  const auto ds = datasets::make_dataset("tensors", {{"train", (dir / "train_u8.pt").string()},
                                                     {"test", (dir / "test_u8.pt").string()}});
  datasets::SplitOptions opts;
  opts.validation_count = 500;
  const auto split = ds->load(opts);
  CHECK(split.train.size() == 2500);
  CHECK(split.validation.size() == 500);
  CHECK(split.test.size() == 500);
  CHECK(split.mean.at(0) == Approx(datasets::kFashionMnistMean).margin(0.02));
  CHECK(split.std.at(0) == Approx(datasets::kFashionMnistStd).margin(0.02));
  // Without a test file the validation split is the test set.
  const auto no_test =
      datasets::make_dataset("tensors", {{"train", (dir / "train_u8.pt").string()}});
  CHECK(no_test->load(opts).test.size() == 500);
}

TEST_CASE("a tensor file a user got wrong is refused, naming the file and the fix",
          "[datasets][tensors]") {
  const fs::path dir = tensor_files();
  const auto refused = [&](const char* file, const std::string& what) {
    INFO(file);
    const std::string path = (dir / file).string();
    REQUIRE_THROWS_AS(datasets::read_tensor_file(path), InputError);
    REQUIRE_THROWS_WITH(datasets::read_tensor_file(path),
                        Catch::Contains(path) && Catch::Contains(what));
  };
  refused("bad_labels.pt", "labels range over 0 to 300");
  refused("bad_range.pt", "float images must lie in [0, 1]");
  refused("no_labels.pt", "has no \"labels\" tensor");
  refused("list.pt", "not a dict");
  refused("missing.pt", "cannot open");
  // A file that is not a torch.save archive at all: the Fashion-MNIST labels.
  const std::string idx = std::string(datasets::kFashionMnistDir) + "/t10k-labels-idx1-ubyte.gz";
  REQUIRE_THROWS_WITH(datasets::read_tensor_file(idx), Catch::Contains("is not a torch.save file"));
  // The config section: train is required, mean and std come together.
  REQUIRE_THROWS_WITH(datasets::make_dataset("tensors", nlohmann::json::object()),
                      Catch::Contains(".train is missing"));
  REQUIRE_THROWS_WITH(datasets::make_dataset("tensors", {{"train", "x.pt"}, {"mean", 0.5}}),
                      Catch::Contains("mean and std together"));
}
