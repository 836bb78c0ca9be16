#include "datasets/tensor_file.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import_read.h>
#include <torch/torch.h>

#include <cmath>

#include "core/errors.h"
#include "core/files.h"
#include "core/json.h"
#include "graph/network.h"

namespace tightfit::datasets {

namespace {

constexpr const char* kHowToSave =
    "write it in Python with torch.save({\"images\": N x C x H x W uint8 or float in [0, 1], "
    "\"labels\": N int64}, path)";

at::Tensor entry(const c10::Dict<c10::IValue, c10::IValue>& dict, const char* key,
                 const std::string& path) {
  for (const auto& kv : dict)
    if (kv.key().isString() && kv.key().toStringRef() == key && kv.value().isTensor())
      return kv.value().toTensor();
  throw InputError("tensor file '" + path + "' has no \"" + key + "\" tensor; " + kHowToSave);
}

}  // namespace

ImageSet read_tensor_file(const std::string& path) {
  check_readable_file(path, "tensor file", kHowToSave);
  // torch.save writes a zip archive. It is read from the file, not through torch::pickle_load:
  // LibTorch 1.13 reads past the end of pickle_load's buffer on input that is not a whole
  // archive (AddressSanitizer found it with a gzip file).
  if (!file_starts_with(path, kZipMagic))
    throw InputError("tensor file '" + path + "' is not a torch.save file (no zip archive); " +
                     kHowToSave);
  c10::IValue value;
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    value = torch::jit::readArchiveAndTensors("data", "", "", c10::nullopt, c10::nullopt,
                                              c10::nullopt, reader);
  } catch (const std::exception& e) {
    throw InputError("tensor file '" + path + "' is not a torch.save file (" +
                     without_backtrace(e.what()).substr(0, 120) + "); " + kHowToSave);
  }
  if (!value.isGenericDict())
    throw InputError("tensor file '" + path + "' holds a " + value.tagKind() + ", not a dict; " +
                     kHowToSave);
  const auto dict = value.toGenericDict();
  at::Tensor images = entry(dict, "images", path), labels = entry(dict, "labels", path);
  if (images.dim() != 4 || labels.dim() != 1 || images.size(0) != labels.size(0) ||
      images.size(0) == 0)
    throw InputError("tensor file '" + path + "': images must be N x C x H x W and labels N, " +
                     "with the same N > 0 (got images " + graph::shape_str(images.sizes().vec()) +
                     ", labels " + graph::shape_str(labels.sizes().vec()) + ")");
  if (images.is_floating_point()) {
    const double lo = images.min().item<double>(), hi = images.max().item<double>();
    if (!(lo >= 0 && hi <= 1))
      throw InputError("tensor file '" + path + "': float images must lie in [0, 1] (found " +
                       std::to_string(lo) + " to " + std::to_string(hi) +
                       "); save them unnormalized, the data section's mean and std normalize");
    images = (images.to(at::kFloat) * 255).round().to(at::kByte);
  } else if (images.scalar_type() != at::kByte) {
    throw InputError("tensor file '" + path + "': images must be uint8 or float, not " +
                     std::string(c10::toString(images.scalar_type())));
  }
  if (labels.is_floating_point() || labels.scalar_type() == at::kBool)
    throw InputError("tensor file '" + path + "': labels must be integer class indices");
  const int64_t lo = labels.min().item<int64_t>(), hi = labels.max().item<int64_t>();
  if (lo < 0 || hi > 255)
    throw InputError("tensor file '" + path + "': labels range over " + std::to_string(lo) +
                     " to " + std::to_string(hi) + "; class indices must be in [0, 255]");
  ImageSet set;
  set.channels = images.size(1);
  set.rows = images.size(2);
  set.cols = images.size(3);
  const at::Tensor px = images.contiguous();
  set.pixels.assign(px.data_ptr<uint8_t>(), px.data_ptr<uint8_t>() + px.numel());
  const at::Tensor lb = labels.to(at::kByte).contiguous();
  set.labels.assign(lb.data_ptr<uint8_t>(), lb.data_ptr<uint8_t>() + lb.numel());
  return set;
}

TensorFile TensorFile::from_json(const nlohmann::json& j, const std::string& where) {
  auto t = read_section<TensorFile>(j, where);
  if (t.train_.empty())
    throw ConfigError(where + ".train is missing: the tensor file of the training images (" +
                      kHowToSave + ")");
  check_normalization_pair(t.mean_, t.std_, where);
  t.where_ = where;
  return t;
}

Split TensorFile::load(const SplitOptions& opts) const {
  const ImageSet train = read_tensor_file(train_);
  ImageSet test = test_.empty() ? ImageSet{} : read_tensor_file(test_);
  if (!test_.empty() &&
      (test.channels != train.channels || test.rows != train.rows || test.cols != train.cols))
    throw InputError("tensor files '" + train_ + "' and '" + test_ + "' hold images of " +
                     "different shapes; save both at one size");
  Split split = split_training_set(train, std::move(test), opts);
  if (test_.empty()) split.test = split.validation;
  set_normalization(split, mean_, std_, where_);
  return split;
}

nlohmann::json TensorFile::describe() const {
  nlohmann::json j = {{"name", name()}, {"train", train_}};
  if (!test_.empty()) j["test"] = test_;
  return j;
}

}  // namespace tightfit::datasets
