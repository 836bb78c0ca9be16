#include "targets/lowering.h"

#include <algorithm>
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

bool weight_codes(const graph::Tensor& w, Int8Weights& out) {
  const int64_t out_ch = w.shape.at(0);
  const int64_t per_out = w.numel() / out_ch;
  out.codes.assign(static_cast<size_t>(w.numel()), 0);
  out.scales.assign(static_cast<size_t>(out_ch), 0.0);
  for (int64_t o = 0; o < out_ch; ++o) {
    const float* row = w.data.data() + o * per_out;
    double top = 0.0;
    for (int64_t k = 0; k < per_out; ++k) top = std::max(top, std::fabs(double{row[k]}));
    if (top == 0.0) continue;  // all codes 0
    bool found = false;
    for (int bits = 8; bits >= 2 && !found; --bits) {
      const double scale = top / static_cast<double>((1 << (bits - 1)) - 1);
      found = true;
      for (int64_t k = 0; k < per_out && found; ++k) {
        const double r = row[k] / scale;
        // Scales are float32 and the maximum itself is rounded: codes are integers within 1e-5.
        found = std::fabs(r - std::nearbyint(r)) <= 1e-2;
      }
      if (!found) continue;
      out.scales[o] = scale;
      for (int64_t k = 0; k < per_out; ++k)
        out.codes[o * per_out + k] = static_cast<int8_t>(std::nearbyint(row[k] / scale));
    }
    if (!found) return false;
  }
  return true;
}

bool within_7_bits(const Int8Weights& w) {
  return std::all_of(w.codes.begin(), w.codes.end(), [](int8_t c) { return c >= -64 && c <= 63; });
}

Int8Weights with_multipliers(const Int8Weights& w, const std::vector<double>& mult) {
  Int8Weights out = w;
  const size_t per_out = w.codes.size() / w.scales.size();
  for (size_t o = 0; o < w.scales.size(); ++o) {
    double scale = w.scales[o] * mult[o];
    int sign = 1;
    if (scale < 0) {
      scale = -scale;
      sign = -1;
    }
    if (scale == 0) {
      scale = 1.0;
      sign = 0;
    }
    out.scales[o] = scale;
    for (size_t k = 0; k < per_out; ++k)
      out.codes[o * per_out + k] = static_cast<int8_t>(sign * w.codes[o * per_out + k]);
  }
  return out;
}

}  // namespace tightfit::targets
