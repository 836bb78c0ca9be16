// Calibration batches for policies::apply, drawn the same way by every command and the search.

#include "datasets/batches.h"
#include "evaluators/evaluator.h"

namespace tightfit::evaluators {

policies::Calibration sample_calibration(const datasets::Split& data, uint64_t seed,
                                         int64_t batches, int64_t batch_size) {
  policies::Calibration calibration;
  for (auto& b :
       datasets::sample_batches(data.train, batches, batch_size, data.mean, data.std, seed)) {
    calibration.images.push_back(std::move(b.images));
    calibration.labels.push_back(std::move(b.labels));
  }
  return calibration;
}

}  // namespace tightfit::evaluators
