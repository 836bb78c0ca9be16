// symmetric and affine: a uniform integer grid per output channel or per tensor, its range from
// the calibration method (minmax, percentile, mse; see shared.cpp).
//
// symmetric maps [-max|w|, max|w|] onto {-(2^(b-1)-1)..2^(b-1)-1} with zero point 0 (one float32
// scale per group); affine maps [min(w, 0), max(w, 0)] onto {0..2^b-1} with an integer zero
// point (a scale and a zero point per group), which spends no code on a side the range lacks.

#include <string>

#include "core/errors.h"
#include "core/json.h"
#include "policies/quant_schemes/scheme.h"

namespace tightfit::policies::quant_schemes {
namespace {

SchemeResult quantize_uniform(graph::Tensor& w, int bits, const QuantConfig& config,
                              GridKind kind) {
  // Only these schemes read granularity and calibration, so only they reject bad values here
  // (QuantConfig::from_json rejects them for configs read from JSON).
  if (!one_of(config.granularity, kGranularities))
    throw ConfigError("quantization granularity '" + config.granularity +
                      "' is unknown; valid values: " + join(kGranularities));
  check_calibration(config);

  const int64_t params_per_group = kind == GridKind::kAffine ? 2 : 1;  // scale [+ zero point]
  ChannelLayout l = layout_of(w);
  if (config.granularity == "per_tensor") l = {1, static_cast<int64_t>(w.data.size())};

  SchemeResult r;
  r.codes.resize(w.data.size());
  for (int64_t c = 0; c < l.channels; ++c) {
    float* p = w.data.data() + c * l.per_channel;
    const UniformGrid g = calibrated_grid(p, l.per_channel, kind, bits, config);
    for (int64_t i = 0; i < l.per_channel; ++i) {
      const int64_t q = g.code(p[i]);
      r.codes[static_cast<size_t>(c * l.per_channel + i)] = q;
      p[i] = g.value(q);
    }
  }
  r.metadata_bytes = l.channels * params_per_group * kParamBytes;
  return r;
}

SchemeResult quantize_symmetric(graph::Tensor& w, int bits, const QuantConfig& config) {
  return quantize_uniform(w, bits, config, GridKind::kSymmetric);
}

SchemeResult quantize_affine(graph::Tensor& w, int bits, const QuantConfig& config) {
  return quantize_uniform(w, bits, config, GridKind::kAffine);
}

// One bit leaves a symmetric grid only {0} and an affine one zero and a single sign; two signs
// and a scale are scheme 'binary'.
std::string uniform_bits_misfit(int bits) { return bits == 1 ? kOneBitNeedsBinary : ""; }

}  // namespace

const Scheme kSymmetricScheme = {"symmetric", quantize_symmetric, uniform_bits_misfit,
                                 GridKind::kSymmetric};

const Scheme kAffineScheme = {"affine", quantize_affine, uniform_bits_misfit, GridKind::kAffine};

}  // namespace tightfit::policies::quant_schemes
