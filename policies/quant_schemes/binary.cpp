// binary: alpha * sign(w) per output channel (BinaryConnect, Courbariaux et al. 2015; XNOR-Net's
// scale, Rastegari et al. 2016) with alpha = mean|w|, the scale that minimizes the squared
// error for fixed signs. Codes are 0 (negative) and 1; one float32 scale per channel.

#include <cmath>
#include <string>

#include "policies/quant_schemes/scheme.h"

namespace tightfit::policies::quant_schemes {
namespace {

SchemeResult quantize_binary(graph::Tensor& w, int /*bits*/, const QuantConfig& /*config*/) {
  const ChannelLayout l = layout_of(w);
  SchemeResult r;
  r.codes.resize(w.data.size());
  for (int64_t c = 0; c < l.channels; ++c) {
    float* p = w.data.data() + c * l.per_channel;
    double sum_abs = 0.0;
    for (int64_t i = 0; i < l.per_channel; ++i) sum_abs += std::fabs(double{p[i]});
    const float alpha =
        l.per_channel > 0 ? static_cast<float>(sum_abs / static_cast<double>(l.per_channel)) : 0;
    for (int64_t i = 0; i < l.per_channel; ++i) {
      const bool negative = p[i] < 0.0f;  // sign(0) = +1
      r.codes[static_cast<size_t>(c * l.per_channel + i)] = negative ? 0 : 1;
      p[i] = negative ? -alpha : alpha;
    }
  }
  r.metadata_bytes = l.channels * kParamBytes;
  return r;
}

std::string binary_bits_misfit(int bits) { return bits != 1 ? "binary weights take 1 bit" : ""; }

}  // namespace

const Scheme kBinaryScheme = {"binary", quantize_binary, binary_bits_misfit, GridKind::kAffine};

}  // namespace tightfit::policies::quant_schemes
