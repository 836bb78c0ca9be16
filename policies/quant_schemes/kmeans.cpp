// kmeans: one codebook of at most 2^b float32 centroids per tensor (Gong et al. 2014; Deep
// Compression, Han et al. 2016); a weight's code is the index of its centroid.
//
// 1-D k-means. With sorted centroids every cluster is a contiguous run of the sorted values
// (the cells are split at the midpoints), so one Lloyd step is a binary search per midpoint
// and a mean from prefix sums: O(k log n) per iteration after one O(n log n) sort.
//
// Also here: kmeans_weight_sharing (quantize.h), training through the same clustering.

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/errors.h"
#include "policies/quant_schemes/scheme.h"

namespace tightfit::policies::quant_schemes {
namespace {

/// Lloyd iterations of k-means at most; on weight tensors it settles in far fewer.
constexpr int kKmeansMaxIterations = 30;
/// Largest integer width k-means may use (a 2^8 = 256-entry codebook per tensor).
constexpr int kKmeansMaxBits = 8;

// Linear initialization between min and max: Deep Compression (Han et al. 2016) found it beats
// random and density-based initialization because it keeps centroids on the few large weights
// that matter most. It is also deterministic. Weights that take no more values than there are
// centroids (already shared, as after a fine-tune through this quantizer) keep exactly those
// values.
std::vector<double> initial_centroids(const std::vector<double>& sorted, int bits) {
  std::vector<double> distinct;
  for (double v : sorted) {
    if (distinct.empty() || v != distinct.back()) distinct.push_back(v);
    if (distinct.size() > (size_t{1} << bits)) break;
  }
  std::vector<double> centroids = distinct;
  if (distinct.size() > (size_t{1} << bits)) {
    const double lo = sorted.front(), hi = sorted.back();
    const int64_t k = int64_t{1} << bits;
    centroids.resize(static_cast<size_t>(k));
    for (int64_t i = 0; i < k; ++i)
      centroids[i] = lo + (hi - lo) * static_cast<double>(i) / (k - 1);
  }
  return centroids;
}

/// Lloyd steps on `centroids` until the assignments stop changing.
void lloyd(const std::vector<double>& sorted, std::vector<double>& centroids) {
  const size_t n = sorted.size();
  std::vector<double> prefix(n + 1, 0.0);
  for (size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + sorted[i];

  std::vector<size_t> starts(centroids.size() + 1, 0), previous;
  for (int it = 0; it < kKmeansMaxIterations; ++it) {
    const std::vector<double> mids = midpoints_of(centroids);
    // Cluster i holds sorted[starts[i] .. starts[i+1]): the values in [mids[i-1], mids[i]).
    starts.front() = 0;
    starts.back() = n;
    for (size_t i = 0; i < mids.size(); ++i)
      starts[i + 1] = static_cast<size_t>(std::lower_bound(sorted.begin(), sorted.end(), mids[i]) -
                                          sorted.begin());
    if (starts == previous) break;  // assignments stopped changing
    previous = starts;
    for (size_t i = 0; i < centroids.size(); ++i) {
      const size_t count = starts[i + 1] - starts[i];
      // An empty cluster keeps its centroid; it is dropped from the codebook later.
      if (count > 0)
        centroids[i] = (prefix[starts[i + 1]] - prefix[starts[i]]) / static_cast<double>(count);
    }
  }
}

// The stored codebook: float32 centroids that have members, sorted (the mean of a contiguous
// run of sorted values keeps centroids in order).
std::vector<double> codebook_of(const std::vector<double>& sorted,
                                const std::vector<double>& centroids) {
  std::vector<double> codebook;
  const std::vector<double> mids = midpoints_of(centroids);
  std::vector<bool> used(centroids.size(), false);
  for (double v : sorted) used[static_cast<size_t>(nearest_level(mids, v))] = true;
  for (size_t i = 0; i < centroids.size(); ++i) {
    const double c = static_cast<float>(centroids[i]);
    if (used[i] && (codebook.empty() || c != codebook.back())) codebook.push_back(c);
  }
  return codebook;
}

// Per tensor whatever the granularity: one codebook shared by all channels is what makes the
// codes short.
SchemeResult quantize_kmeans(graph::Tensor& w, int bits, const QuantConfig& /*config*/) {
  SchemeResult r;
  const size_t n = w.data.size();
  r.codes.assign(n, 0);
  if (n == 0) return r;

  std::vector<double> sorted(w.data.begin(), w.data.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> centroids = initial_centroids(sorted, bits);
  lloyd(sorted, centroids);
  const std::vector<double> codebook = codebook_of(sorted, centroids);

  const std::vector<double> mids = midpoints_of(codebook);
  for (size_t i = 0; i < n; ++i) {
    const int64_t q = nearest_level(mids, w.data[i]);
    r.codes[i] = q;
    w.data[i] = static_cast<float>(codebook[static_cast<size_t>(q)]);
  }
  r.metadata_bytes = static_cast<int64_t>(codebook.size()) * kParamBytes;
  return r;
}

std::string kmeans_bits_misfit(int bits) {
  if (bits == 1) return kOneBitNeedsBinary;
  if (bits > kKmeansMaxBits)
    return "k-means codebooks hold at most 2^" + std::to_string(kKmeansMaxBits) + " entries";
  return "";
}

}  // namespace

const Scheme kKmeansScheme = {"kmeans", quantize_kmeans, kmeans_bits_misfit, GridKind::kAffine};

}  // namespace tightfit::policies::quant_schemes

namespace tightfit::policies {

std::function<void(graph::Tensor&)> kmeans_weight_sharing(int bits) {
  TIGHTFIT_CHECK(bits >= 1 && bits <= quant_schemes::kKmeansMaxBits,
                 "k-means weight sharing at " << bits << " bits");
  // Each weight's cluster and each cluster's size, fixed by the first call.
  struct Sharing {
    std::vector<int64_t> cluster;
    std::vector<int64_t> members;
  };
  auto sharing = std::make_shared<Sharing>();
  return [bits, sharing](graph::Tensor& w) {
    if (sharing->cluster.empty()) {
      graph::Tensor first = w;
      sharing->cluster = quant_schemes::quantize_kmeans(first, bits, QuantConfig{}).codes;
      const int64_t k = *std::max_element(sharing->cluster.begin(), sharing->cluster.end()) + 1;
      sharing->members.assign(static_cast<size_t>(k), 0);
      for (int64_t c : sharing->cluster) ++sharing->members[static_cast<size_t>(c)];
    }
    TIGHTFIT_CHECK(sharing->cluster.size() == w.data.size(),
                   "weight sharing: the tensor changed size");
    std::vector<double> sum(sharing->members.size(), 0.0);
    for (size_t i = 0; i < w.data.size(); ++i)
      sum[static_cast<size_t>(sharing->cluster[i])] += w.data[i];
    for (size_t c = 0; c < sum.size(); ++c)
      if (sharing->members[c] > 0) sum[c] /= static_cast<double>(sharing->members[c]);
    for (size_t i = 0; i < w.data.size(); ++i)
      w.data[i] = static_cast<float>(sum[static_cast<size_t>(sharing->cluster[i])]);
  };
}

}  // namespace tightfit::policies
