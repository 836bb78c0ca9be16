// The data-set registry. A new data set is one file under datasets/ and one line in
// register_builtin_datasets().

#include "core/registry.h"

#include "datasets/fashion_mnist.h"
#include "datasets/image_folder.h"
#include "datasets/tensor_file.h"

namespace tightfit::datasets {

namespace {

using DatasetRegistry = Registry<Dataset, DatasetContext>;

void register_builtin_datasets(DatasetRegistry& r) {
  r.add("fashion-mnist", [](const nlohmann::json& j, const DatasetContext& c) {
    return std::make_unique<FashionMnist>(FashionMnist::from_json(j, c.where));
  });
  r.add("image-folder", [](const nlohmann::json& j, const DatasetContext& c) {
    return std::make_unique<ImageFolder>(ImageFolder::from_json(j, c.where));
  });
  r.add("tensors", [](const nlohmann::json& j, const DatasetContext& c) {
    return std::make_unique<TensorFile>(TensorFile::from_json(j, c.where));
  });
}

const DatasetRegistry& registry() {
  return builtin_registry("data set", "data sets", register_builtin_datasets);
}

}  // namespace

std::vector<std::string> dataset_names() { return registry().names(); }

std::unique_ptr<Dataset> make_dataset(const std::string& name, const nlohmann::json& section,
                                      const DatasetContext& context) {
  return registry().make(name, section, context);
}

}  // namespace tightfit::datasets
