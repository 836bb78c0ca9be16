#pragma once
// Low-rank factorization of conv and linear layers.
//   linear  W (out x in)            -> truncated SVD: linear in->r, then linear r->out (+ bias)
//   conv    tucker2                 -> 1x1 in->r_in, kxk r_in->r_out (stride, padding, dilation of
//                                      the original), 1x1 r_out->out (+ bias); HOSVD of the
//                                      kernel's mode-0 and mode-1 unfoldings
//   conv    spatial (Jaderberg)     -> kx1 in->r then 1xk r->out (+ bias); SVD of the kernel
//                                      reshaped to (in*kh) x (out*kw)
// Rank by fraction of the full rank, by count, or by retained energy (share of squared singular
// values kept). A factorization that would have more parameters or more MACs than the layer is
// not applied and says so in its report. Grouped/depthwise convs are not factorized (reported).

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "graph/network.h"

namespace tightfit::policies {

/// How a convolution can be factorized (LowRankConfig::conv); linear layers always use SVD.
inline const std::vector<std::string> kConvFactorizations = {"tucker2", "spatial"};

struct LowRankConfig {
  std::string conv = "tucker2";      ///< tucker2 | spatial
  std::string rank_by = "fraction";  ///< fraction (0,1] | count (>= 1) | energy (0,1]
  /// Apply a factorization even when it has more params or MACs than the layer (exactness
  /// checks, studies of the approximation error); off in searches.
  bool allow_larger = false;

  template <typename Fields>
  void fields(Fields& f) {
    f("conv", conv);
    f("rank_by", rank_by);
    f("allow_larger", allow_larger);
  }
  static LowRankConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
};

struct LowRankReport {
  std::string layer;
  std::string kind;            ///< svd | tucker2 | spatial
  int64_t full_rank = 0;       ///< svd/spatial: min of the unfolding; tucker2: in channels
  std::vector<int64_t> ranks;  ///< svd/spatial: {r}; tucker2: {r_in, r_out}
  int64_t params_before = 0, params_after = 0;
  int64_t macs_before = 0, macs_after = 0;  ///< per image
  bool applied = false;
  std::string note;                     ///< why not applied, when not
  std::vector<std::string> new_layers;  ///< names of the factor layers, input side first
  nlohmann::json to_json() const;
};

/// Returns `net` with each layer named in `ranks` (layer -> value, read per config.rank_by)
/// replaced by its factors, named "<layer>.lr0", "<layer>.lr1"(, "<layer>.lr2"), the last of
/// which produces the layer's output. Throws ConfigError for a layer that is not conv/linear or a
/// rank value out of range. `reports` gets one entry per requested layer.
graph::Network factorize(const graph::Network& net, const std::map<std::string, double>& ranks,
                         const LowRankConfig& config, std::vector<LowRankReport>& reports);

}  // namespace tightfit::policies
