#include "targets/lowering.h"

#include <cmath>

#include "core/errors.h"

namespace tightfit::targets {

const graph::Tensor& param(const graph::Node& n, const std::string& key) {
  auto it = n.params.find(key);
  if (it == n.params.end())
    throw InputError("node '" + n.name + "' (" + graph::op_name(n.op) + ") has no parameter '" +
                     key + "'");
  return it->second;
}

void fold_batch_norm(const graph::Node& bn, std::vector<double>& mult, std::vector<double>& bias) {
  const auto& gamma = param(bn, "weight").data;
  const auto& beta = param(bn, "bias").data;
  const auto& mean = param(bn, "running_mean").data;
  const auto& var = param(bn, "running_var").data;
  mult.assign(gamma.size(), 1.0);
  for (size_t o = 0; o < gamma.size(); ++o) {
    mult[o] = gamma[o] / std::sqrt(static_cast<double>(var[o]) + bn.attrs.eps);
    bias[o] = (bias[o] - mean[o]) * mult[o] + beta[o];
  }
}

}  // namespace tightfit::targets
