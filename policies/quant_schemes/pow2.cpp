// pow2: powers of two (INQ, Zhou et al. 2017). Per channel, levels 0 and +-s * 2^-e for
// e = 0..2^(b-1)-2 with s = max|w|, so b bits hold sign, exponent and a zero code; multiplies by
// a level are shifts. The code of a weight is its signed level index (0 = zero, +-1 = the
// smallest power, ...); one float32 scale per channel.

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "policies/quant_schemes/scheme.h"

namespace tightfit::policies::quant_schemes {
namespace {

SchemeResult quantize_pow2(graph::Tensor& w, int bits, const QuantConfig& /*config*/) {
  const ChannelLayout l = layout_of(w);
  const int64_t exponents = (int64_t{1} << (bits - 1)) - 1;
  SchemeResult r;
  r.codes.resize(w.data.size());
  for (int64_t c = 0; c < l.channels; ++c) {
    float* p = w.data.data() + c * l.per_channel;
    double s = 0.0;
    for (int64_t i = 0; i < l.per_channel; ++i) s = std::max(s, std::fabs(double{p[i]}));
    const float scale = static_cast<float>(s);  // stored as float32
    // Magnitudes ascending: 0, s*2^-(E-1), ..., s*2^-1, s. Multiplying a float by a power of
    // two is exact, so these are exactly the values a backend reconstructs.
    std::vector<double> magnitudes = {0.0};
    for (int64_t e = exponents - 1; e >= 0; --e)
      magnitudes.push_back(static_cast<float>(std::ldexp(double{scale}, -static_cast<int>(e))));
    const std::vector<double> mids = midpoints_of(magnitudes);
    for (int64_t i = 0; i < l.per_channel; ++i) {
      const double v = p[i];
      // Nearest in linear distance; ties of |v| on a midpoint go to the larger level.
      const int64_t level = scale == 0.0f ? 0 : nearest_level(mids, std::fabs(v));
      const float m = static_cast<float>(magnitudes[static_cast<size_t>(level)]);
      const bool negative = v < 0.0 && m > 0.0f;  // zero stays +0.0
      r.codes[static_cast<size_t>(c * l.per_channel + i)] = negative ? -level : level;
      p[i] = negative ? -m : m;
    }
  }
  r.metadata_bytes = l.channels * kParamBytes;
  return r;
}

std::string pow2_bits_misfit(int bits) {
  if (bits < 2)
    return "pow2 needs 2 bits or more for sign, exponent and zero; 1 bit is scheme 'binary'";
  return "";
}

}  // namespace

const Scheme kPow2Scheme = {"pow2", quantize_pow2, pow2_bits_misfit, GridKind::kAffine};

}  // namespace tightfit::policies::quant_schemes
