// The quantizers: uniform grids lose less as bits rise for every scheme, granularity and
// calibration method, mse calibration never loses to minmax, k-means and binary and pow2 use
// only the values their schemes allow, fp16/bf16 rounding is exact to the format, affine grids
// keep 0.0 exact, storage costs (codes, Huffman, metadata) match hand counts, degenerate tensors
// stay finite, activation ranges come out as computed by hand, and bad configs are ConfigErrors
// that list what is valid.
//
// Test tensors are seeded: a Gaussian, a "trained-like" conv weight (channels of different
// magnitudes, Laplacian values, a few outliers: what trained filters look like, unlike the
// uniform initialization of the zoo), and a heavy-tailed Student-t tensor.

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/errors.h"
#include "graph/network.h"
#include "policies/quantize.h"

using tightfit::ConfigError;
using tightfit::graph::Shape;
using tightfit::graph::Tensor;
using tightfit::policies::ActivationQuant;
using tightfit::policies::calibrate_activation;
using tightfit::policies::check_weight_bits;
using tightfit::policies::huffman_bits;
using tightfit::policies::QuantConfig;
using tightfit::policies::quantize_weight;
using tightfit::policies::QuantizedWeight;

namespace {

constexpr uint64_t kSeed = 7;
/// Integer widths the uniform schemes take, from fine to coarse.
const std::vector<int> kFallingBits = {8, 6, 4, 3, 2};

Tensor gaussian(const Shape& shape, uint64_t seed) {
  Tensor t(shape);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (float& v : t.data) v = normal(rng);
  return t;
}

/// {32, 16, 3, 3}: per-channel magnitudes spread over a decade, Laplacian values, and one
/// outlier in every fourth channel.
Tensor conv_like(uint64_t seed) {
  Tensor t({32, 16, 3, 3});
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<float> channel_scale(std::log(0.02f), 0.7f);
  std::exponential_distribution<float> magnitude(1.0f);
  std::bernoulli_distribution sign(0.5);
  const int64_t per = 16 * 3 * 3;
  for (int64_t c = 0; c < 32; ++c) {
    const float s = channel_scale(rng);
    for (int64_t i = 0; i < per; ++i)
      t.data[static_cast<size_t>(c * per + i)] = (sign(rng) ? s : -s) * magnitude(rng);
    if (c % 4 == 0) t.data[static_cast<size_t>(c * per)] = 12.0f * s;
  }
  return t;
}

/// Student-t with 4 degrees of freedom: a few weights far outside the bulk, yet a finite
/// variance (with 2 the few largest weights would dominate every squared error).
Tensor heavy_tailed(const Shape& shape, uint64_t seed) {
  Tensor t(shape);
  std::mt19937_64 rng(seed);
  std::student_t_distribution<float> student(4.0f);
  for (float& v : t.data) v = 0.01f * student(rng);
  return t;
}

double mean_sq_error(const Tensor& a, const Tensor& b) {
  REQUIRE(a.data.size() == b.data.size());
  double sum = 0.0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    const double d = static_cast<double>(a.data[i]) - b.data[i];
    sum += d * d;
  }
  return a.data.empty() ? 0.0 : sum / static_cast<double>(a.data.size());
}

/// Quantized copy of `w` and its cost.
std::pair<Tensor, QuantizedWeight> quantized(const Tensor& w, int bits, const QuantConfig& c) {
  Tensor q = w;
  const QuantizedWeight cost = quantize_weight(q, bits, c, kSeed);
  return {q, cost};
}

double error_at(const Tensor& w, int bits, const QuantConfig& c) {
  return mean_sq_error(w, quantized(w, bits, c).first);
}

QuantConfig config(const std::string& scheme, const std::string& granularity = "per_channel",
                   const std::string& calibration = "minmax") {
  QuantConfig c;
  c.scheme = scheme;
  c.granularity = granularity;
  c.calibration = calibration;
  return c;
}

std::vector<float> channel(const Tensor& t, int64_t c) {
  const int64_t per = t.numel() / t.shape[0];
  return {t.data.begin() + c * per, t.data.begin() + (c + 1) * per};
}

bool all_finite(const Tensor& t) {
  return std::all_of(t.data.begin(), t.data.end(), [](float v) { return std::isfinite(v); });
}

}  // namespace

TEST_CASE("uniform quantization error falls as bits rise", "[quantize]") {
  const std::map<std::string, Tensor> tensors = {{"gaussian", gaussian({64, 32, 3, 3}, kSeed)},
                                                 {"conv_like", conv_like(kSeed)}};
  for (const auto& [name, w] : tensors)
    for (const std::string scheme : {"symmetric", "affine"})
      for (const std::string granularity : {"per_channel", "per_tensor"})
        for (const std::string calibration : {"minmax", "percentile", "mse"}) {
          const QuantConfig c = config(scheme, granularity, calibration);
          INFO(name << " " << scheme << " " << granularity << " " << calibration);
          double finer = 0.0;
          for (int bits : kFallingBits) {
            const double err = error_at(w, bits, c);
            INFO(bits << " bits: " << err << ", one step finer: " << finer);
            CHECK(err > finer);
            finer = err;
          }
          CHECK(finer > 0.0);
        }
}

TEST_CASE("per-channel grids lose less than per-tensor on channels of different magnitudes",
          "[quantize]") {
  const Tensor w = conv_like(kSeed);
  for (const std::string scheme : {"symmetric", "affine"})
    for (int bits : {8, 4, 2})
      CHECK(error_at(w, bits, config(scheme, "per_channel")) <
            error_at(w, bits, config(scheme, "per_tensor")));
}

TEST_CASE("mse calibration never loses to minmax and wins on heavy tails", "[quantize]") {
  const Tensor w = heavy_tailed({64, 32, 3, 3}, kSeed);
  for (const std::string scheme : {"symmetric", "affine"})
    for (const std::string granularity : {"per_channel", "per_tensor"}) {
      INFO(scheme << " " << granularity);
      const double minmax = error_at(w, 4, config(scheme, granularity, "minmax"));
      const double mse = error_at(w, 4, config(scheme, granularity, "mse"));
      CHECK(mse <= minmax);
      // One tensor-wide range is stretched by the single largest outlier: clipping must pay.
      if (granularity == "per_tensor") CHECK(mse < 0.5 * minmax);
    }
}

TEST_CASE("percentile calibration clips the tails it is told to", "[quantize]") {
  const Tensor w = heavy_tailed({1, 10000}, kSeed);
  QuantConfig c = config("symmetric", "per_tensor", "percentile");
  c.percentile = 99.0;
  const Tensor q = quantized(w, 8, c).first;
  std::vector<float> mags;
  for (float v : w.data) mags.push_back(std::fabs(v));
  std::sort(mags.begin(), mags.end());
  const float amax_q = *std::max_element(
      q.data.begin(), q.data.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); });
  // The clipped range is the 99th percentile of |w| (up to float rounding of scale * 127).
  CHECK(std::fabs(amax_q) ==
        Approx(mags[static_cast<size_t>(0.99 * (mags.size() - 1))]).epsilon(1e-3));
  CHECK(std::fabs(amax_q) < 0.5 * mags.back());
}

TEST_CASE("uniform grids use the values their bits allow", "[quantize]") {
  const Tensor w = gaussian({16, 8, 3, 3}, kSeed);
  for (int bits : kFallingBits) {
    const auto [qs, sym] = quantized(w, bits, config("symmetric"));
    CHECK(sym.max_distinct_per_channel <= (int64_t{1} << bits) - 1);
    if (bits == 2) CHECK(sym.max_distinct_per_channel == 3);  // -s, 0, +s
    if (bits == 8) CHECK(sym.max_distinct_per_channel > 20);
    // Symmetric: every channel is q * scale with |q| <= qmax and the largest |w| on the grid.
    const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
    for (int64_t c = 0; c < w.shape[0]; ++c) {
      const auto src = channel(w, c);
      const auto dst = channel(qs, c);
      float amax = 0.0f;
      for (float v : src) amax = std::max(amax, std::fabs(v));
      const float scale = amax / qmax;
      for (float v : dst) CHECK(std::fabs(v / scale - std::nearbyint(v / scale)) < 1e-3f);
    }
    const auto [qa, aff] = quantized(w, bits, config("affine"));
    CHECK(aff.max_distinct_per_channel <= int64_t{1} << bits);
  }
}

TEST_CASE("affine grids keep 0.0 exact", "[quantize]") {
  // Shifted weights with pruned (zero) entries: the range is lopsided, so zero is no grid end.
  Tensor w = gaussian({8, 4, 3, 3}, kSeed);
  for (size_t i = 0; i < w.data.size(); ++i) w.data[i] = i % 5 == 0 ? 0.0f : w.data[i] + 0.03f;
  for (const std::string granularity : {"per_channel", "per_tensor"})
    for (const std::string calibration : {"minmax", "percentile", "mse"})
      for (int bits : kFallingBits) {
        INFO(granularity << " " << calibration << " " << bits << " bits");
        const Tensor q = quantized(w, bits, config("affine", granularity, calibration)).first;
        for (size_t i = 0; i < w.data.size(); i += 5) CHECK(q.data[i] == 0.0f);
      }
}

TEST_CASE("k-means uses at most 2^b values and loses less with more bits", "[quantize]") {
  const Tensor w = conv_like(kSeed);
  double coarser = 0.0;
  for (int bits : {2, 3, 4, 6, 8}) {
    const auto [q, cost] = quantized(w, bits, config("kmeans"));
    const std::set<float> values(q.data.begin(), q.data.end());
    INFO(bits << " bits: " << values.size() << " values");
    CHECK(static_cast<int64_t>(values.size()) <= int64_t{1} << bits);
    CHECK(cost.metadata_bytes == 4 * static_cast<int64_t>(values.size()));
    CHECK(cost.code_bits == w.numel() * bits);
    const double err = mean_sq_error(w, q);
    if (bits > 2) CHECK(err < coarser);
    coarser = err;
    // Lloyd steps only lower the error of the linear initialization, which is the per-tensor
    // affine minmax grid up to where zero falls.
    CHECK(err <= error_at(w, bits, config("affine", "per_tensor")));
    // Deterministic: the same tensor gives the same codebook.
    CHECK(quantized(w, bits, config("kmeans")).first.data == q.data);
  }
}

TEST_CASE("k-means keeps weights that already share at most 2^b values", "[quantize]") {
  const Tensor w = conv_like(kSeed);
  for (int bits : {2, 3, 4}) {
    INFO(bits << " bits");
    const Tensor once = quantized(w, bits, config("kmeans")).first;
    const auto [twice, cost] = quantized(once, bits, config("kmeans"));
    CHECK(twice.data == once.data);
    const std::set<float> values(once.data.begin(), once.data.end());
    CHECK(cost.metadata_bytes == 4 * static_cast<int64_t>(values.size()));
  }
}

TEST_CASE("k-means weight sharing fixes clusters and moves their shared values", "[quantize]") {
  Tensor w = conv_like(kSeed);
  const auto share = tightfit::policies::kmeans_weight_sharing(3);
  Tensor first = w;
  share(first);
  // The first call is the kmeans scheme itself.
  CHECK(first.data == quantized(w, 3, config("kmeans")).first.data);
  // Moved weights: every cluster takes the mean of its members, members stay together (whatever
  // the k-means of the moved weights would be).
  Tensor moved = w;
  for (size_t i = 0; i < moved.data.size(); ++i) moved.data[i] += 0.01f * static_cast<float>(i % 7);
  Tensor shared = moved;
  share(shared);
  std::map<float, std::vector<size_t>> members;
  for (size_t i = 0; i < first.data.size(); ++i) members[first.data[i]].push_back(i);
  CHECK(members.size() <= 8);
  for (const auto& [value, idx] : members) {
    double mean = 0;
    for (size_t i : idx) mean += moved.data[i];
    mean /= static_cast<double>(idx.size());
    for (size_t i : idx) CHECK(shared.data[i] == Approx(mean).epsilon(1e-5));
  }
  Tensor other(std::vector<int64_t>{3}, 0.0f);
  CHECK_THROWS(share(other));  // a different tensor
}

TEST_CASE("fake_quantize_weight writes quantize_weight's values for every scheme", "[quantize]") {
  const Tensor w = conv_like(kSeed);
  for (const char* scheme : {"symmetric", "affine", "kmeans", "pow2"})
    for (int bits : {16, 8, 4, 2}) {
      if (std::string(scheme) == "kmeans" && bits > 8) continue;
      auto q = config(scheme);
      if (bits == 16) q.float16 = "bf16";
      Tensor fake = w;
      tightfit::policies::fake_quantize_weight(fake, bits, q);
      CAPTURE(scheme, bits);
      CHECK(fake.data == quantized(w, bits, q).first.data);
    }
  Tensor fake = w;
  tightfit::policies::fake_quantize_weight(fake, 1, config("binary"));
  CHECK(fake.data == quantized(w, 1, config("binary")).first.data);
  CHECK_THROWS_AS(tightfit::policies::fake_quantize_weight(fake, 1, config("symmetric")),
                  tightfit::ConfigError);
}

TEST_CASE("binary weights are +-mean|w| per channel", "[quantize]") {
  const Tensor w = gaussian({16, 8, 3, 3}, kSeed);
  const auto [q, cost] = quantized(w, 1, config("binary"));
  CHECK(cost.max_distinct_per_channel == 2);
  CHECK(cost.code_bits == w.numel());
  CHECK(cost.metadata_bytes == 16 * 4);
  for (int64_t c = 0; c < w.shape[0]; ++c) {
    const auto src = channel(w, c);
    const auto dst = channel(q, c);
    double mean_abs = 0.0;
    for (float v : src) mean_abs += std::fabs(v);
    mean_abs /= static_cast<double>(src.size());
    CHECK(std::set<float>(dst.begin(), dst.end()).size() == 2);
    for (size_t i = 0; i < src.size(); ++i)
      CHECK(dst[i] == Approx(src[i] < 0 ? -mean_abs : mean_abs).epsilon(1e-6));
  }

  // sign(0) = +1, and a channel of equal values has one value.
  Tensor small({2, 4});
  small.data = {0.0f, 1.0f, -1.0f, 2.0f, 0.5f, 0.5f, 0.5f, 0.5f};
  const auto [qs, small_cost] = quantized(small, 1, config("binary"));
  CHECK(qs.data == std::vector<float>{1.0f, 1.0f, -1.0f, 1.0f, 0.5f, 0.5f, 0.5f, 0.5f});
  CHECK(small_cost.max_distinct_per_channel == 2);
}

TEST_CASE("pow2 weights are 0 or +-scale * 2^-k, the nearest such level", "[quantize]") {
  const Tensor w = conv_like(kSeed);
  double coarser = 0.0;
  for (int bits : {2, 3, 4, 6, 8}) {
    const auto [q, cost] = quantized(w, bits, config("pow2"));
    const int max_k = (1 << (bits - 1)) - 2;
    CHECK(cost.metadata_bytes == w.shape[0] * 4);
    CHECK(cost.max_distinct_per_channel <= (int64_t{1} << bits) - 1);
    for (int64_t c = 0; c < w.shape[0]; ++c) {
      const auto src = channel(w, c);
      const auto dst = channel(q, c);
      float s = 0.0f;
      for (float v : src) s = std::max(s, std::fabs(v));
      std::vector<float> levels = {0.0f};
      for (int k = 0; k <= max_k; ++k) levels.push_back(std::ldexp(s, -k));
      for (size_t i = 0; i < src.size(); ++i) {
        const float m = std::fabs(dst[i]);
        CHECK(std::find(levels.begin(), levels.end(), m) != levels.end());
        CHECK((dst[i] == 0.0f || (dst[i] < 0) == (src[i] < 0)));
        // Nearest level, up to float rounding of the distances.
        const float dist = std::fabs(std::fabs(src[i]) - m);
        const bool nearest = std::all_of(levels.begin(), levels.end(), [&](float level) {
          return dist <= std::fabs(std::fabs(src[i]) - level) + 1e-9f;
        });
        CHECK(nearest);
      }
    }
    // More exponents help until the smallest level is below every weight; never hurt.
    const double err = mean_sq_error(w, q);
    if (bits > 2) CHECK(err <= coarser);
    if (bits == 4) CHECK(err < 0.5 * error_at(w, 2, config("pow2")));
    coarser = err;
  }
}

TEST_CASE("16 bits round to fp16 or bf16 whatever the scheme", "[quantize]") {
  const Tensor w = gaussian({16, 8, 3, 3}, kSeed);
  for (const std::string scheme : {"symmetric", "kmeans", "binary"}) {
    QuantConfig c = config(scheme);
    c.huffman = true;  // ignored at 16 bits
    const auto [half, cost] = quantized(w, 16, c);
    CHECK(cost.code_bits == w.numel() * 16);
    CHECK(cost.metadata_bytes == 0);
    c.float16 = "bf16";
    const Tensor bf = quantized(w, 16, c).first;
    for (size_t i = 0; i < w.data.size(); ++i) {
      // Representable: converting again changes nothing.
      CHECK(static_cast<float>(c10::Half(half.data[i])) == half.data[i]);
      CHECK(static_cast<float>(c10::BFloat16(bf.data[i])) == bf.data[i]);
      const float v = w.data[i];
      // Unit roundoff 2^-11 (fp16, in its normal range from 2^-14) and 2^-8 (bf16).
      if (std::fabs(v) >= std::ldexp(1.0f, -14))
        CHECK(std::fabs(half.data[i] - v) <= std::ldexp(std::fabs(v), -11));
      else
        CHECK(std::fabs(half.data[i] - v) <= std::ldexp(1.0f, -25));
      CHECK(std::fabs(bf.data[i] - v) <= std::ldexp(std::fabs(v), -8));
    }
    CHECK(mean_sq_error(w, half) > 0.0);
    CHECK(mean_sq_error(w, half) < mean_sq_error(w, bf));
  }
  // Past the fp16 range values saturate instead of becoming inf.
  Tensor big({1, 2});
  big.data = {1e6f, -1e6f};
  const Tensor q = quantized(big, 16, config("symmetric")).first;
  CHECK(q.data == std::vector<float>{65504.0f, -65504.0f});
}

TEST_CASE("huffman_bits on hand-checked cases", "[quantize]") {
  // a:5 b:2 c:1 d:1 -> lengths 1, 2, 3, 3 -> 5 + 4 + 3 + 3.
  CHECK(huffman_bits({0, 1, 0, 2, 0, 1, 3, 0, 0}) == 15);
  CHECK(huffman_bits({}) == 0);
  CHECK(huffman_bits({42}) == 1);
  CHECK(huffman_bits({-3, -3, -3, -3}) == 4);
  CHECK(huffman_bits({1, 2, 2}) == 3);
  CHECK(huffman_bits({0, 1, 2, 3}) == 8);
  // Fibonacci frequencies 1 1 2 3 5 8: lengths 5 5 4 3 2 1 -> 5 + 5 + 8 + 9 + 10 + 8.
  std::vector<int64_t> fib;
  const std::vector<int> counts = {1, 1, 2, 3, 5, 8};
  for (size_t s = 0; s < counts.size(); ++s) fib.insert(fib.end(), counts[s], 100 + s);
  CHECK(huffman_bits(fib) == 45);
}

TEST_CASE("Huffman-coded weights of a peaked distribution take fewer bits", "[quantize]") {
  const Tensor w = heavy_tailed({64, 32, 3, 3}, kSeed);
  for (const std::string scheme : {"symmetric", "affine", "kmeans", "pow2"}) {
    INFO(scheme);
    QuantConfig c = config(scheme, "per_tensor");
    const auto [plain, plain_cost] = quantized(w, 4, c);
    c.huffman = true;
    const auto [coded, coded_cost] = quantized(w, 4, c);
    CHECK(coded.data == plain.data);  // lossless: only the count changes
    CHECK(plain_cost.code_bits == w.numel() * 4);
    CHECK(coded_cost.code_bits < plain_cost.code_bits);
    CHECK(coded_cost.metadata_bytes == plain_cost.metadata_bytes);
  }
}

TEST_CASE("metadata bytes match a hand count on a {4,3,3,3} conv", "[quantize]") {
  const Tensor w = gaussian({4, 3, 3, 3}, kSeed);
  const auto cost = [&](const QuantConfig& c, int bits) { return quantized(w, bits, c).second; };
  CHECK(cost(config("symmetric"), 4).metadata_bytes == 16);  // 4 scales
  CHECK(cost(config("affine"), 4).metadata_bytes == 32);     // 4 scales + 4 zero points
  CHECK(cost(config("symmetric", "per_tensor"), 4).metadata_bytes == 4);
  CHECK(cost(config("affine", "per_tensor"), 4).metadata_bytes == 8);
  CHECK(cost(config("pow2"), 4).metadata_bytes == 16);
  CHECK(cost(config("binary"), 1).metadata_bytes == 16);
  CHECK(cost(config("kmeans"), 2).metadata_bytes == 16);  // 4 centroids, all used
  // 108 weights x 4 bits = 54 bytes of codes, plus the scales.
  const QuantizedWeight q = cost(config("symmetric"), 4);
  CHECK(q.code_bits == 108 * 4);
  CHECK(q.bytes() == 54 + 16);
  CHECK(cost(config("binary"), 1).bytes() == (108 + 7) / 8 + 16);
}

TEST_CASE("empty and all-zero channels stay finite", "[quantize]") {
  Tensor zeros({4, 3, 3, 3});
  Tensor one_dead = gaussian({4, 3, 3, 3}, kSeed);
  std::fill(one_dead.data.begin(), one_dead.data.begin() + 27, 0.0f);
  const Tensor empty({0, 3, 3, 3});
  const std::vector<std::pair<std::string, int>> cases = {
      {"symmetric", 4}, {"affine", 4}, {"kmeans", 4}, {"pow2", 4}, {"binary", 1}, {"affine", 16}};
  for (const auto& [scheme, bits] : cases)
    for (const std::string calibration : {"minmax", "percentile", "mse"}) {
      INFO(scheme << " " << bits << " bits, " << calibration);
      QuantConfig c = config(scheme, "per_channel", calibration);
      c.huffman = true;
      const auto [qz, zcost] = quantized(zeros, bits, c);
      CHECK(qz.data == zeros.data);
      CHECK(zcost.max_distinct_per_channel == 1);
      const auto [qd, dcost] = quantized(one_dead, bits, c);
      CHECK(all_finite(qd));
      // Uniform grids, pow2 and binary map a dead channel to zeros; k-means has one codebook
      // for the tensor, so the channel becomes its nearest centroid.
      const auto dead = channel(qd, 0);
      if (scheme == "kmeans")
        CHECK(std::set<float>(dead.begin(), dead.end()).size() == 1);
      else
        CHECK(dead == channel(one_dead, 0));
      const auto [qe, ecost] = quantized(empty, bits, c);
      CHECK(qe.data.empty());
      CHECK(ecost.code_bits == 0);
      CHECK(ecost.max_distinct_per_channel == 0);
    }
}

TEST_CASE("linear weights quantize per output row", "[quantize]") {
  const Tensor w = conv_like(kSeed);
  Tensor linear({32, 144});
  linear.data = w.data;  // same rows as the conv's output channels
  for (const std::string scheme : {"symmetric", "affine", "pow2"})
    CHECK(quantized(linear, 4, config(scheme)).first.data ==
          quantized(w, 4, config(scheme)).first.data);
}

TEST_CASE("check_weight_bits names the layer and lists what is allowed", "[quantize]") {
  using Catch::Contains;
  for (const std::string scheme : {"symmetric", "affine", "kmeans", "pow2"}) {
    for (int bits : {32, 16, 8, 6, 4, 3, 2})
      CHECK_NOTHROW(check_weight_bits(bits, config(scheme), "l"));
    CHECK_THROWS_AS(check_weight_bits(1, config(scheme), "conv1"), ConfigError);
    CHECK_THROWS_WITH(check_weight_bits(1, config(scheme), "conv1"),
                      Contains("conv1") && Contains("binary") &&
                          Contains("valid values for '" + scheme + "': 32, 16, 8, 6, 4, 3, 2"));
  }
  for (int bits : {32, 16, 1}) CHECK_NOTHROW(check_weight_bits(bits, config("binary"), "l"));
  CHECK_THROWS_WITH(check_weight_bits(4, config("binary"), "layer2.0.conv1"),
                    Contains("layer2.0.conv1") && Contains("valid values for 'binary': 32, 16, 1"));
  CHECK_THROWS_WITH(check_weight_bits(5, config("symmetric"), "fc"),
                    Contains("'fc'") && Contains("valid values: 32, 16, 8, 6, 4, 3, 2, 1"));
  CHECK_THROWS_WITH(check_weight_bits(1, config("pow2"), "fc"), Contains("pow2 needs 2 bits"));
  CHECK_THROWS_WITH(check_weight_bits(8, config("ternary"), "fc"),
                    Contains("'ternary'") && Contains("symmetric, affine, kmeans, pow2, binary"));
  // quantize_weight refuses the same combinations.
  Tensor w = gaussian({2, 3}, kSeed);
  CHECK_THROWS_AS(quantize_weight(w, 4, config("binary"), kSeed), ConfigError);
}

TEST_CASE("QuantConfig parses strictly", "[quantize]") {
  using Catch::Contains;
  using nlohmann::json;
  const QuantConfig d = QuantConfig::from_json(json::object(), "quant");
  CHECK(d.to_json() == QuantConfig{}.to_json());
  const json full = {{"scheme", "affine"},  {"granularity", "per_tensor"}, {"calibration", "mse"},
                     {"percentile", 99.9},  {"float16", "bf16"},           {"huffman", true},
                     {"reduce_range", true}};
  const QuantConfig c = QuantConfig::from_json(full, "quant");
  CHECK(c.scheme == "affine");
  CHECK(c.granularity == "per_tensor");
  CHECK(c.calibration == "mse");
  CHECK(c.percentile == 99.9);
  CHECK(c.float16 == "bf16");
  CHECK(c.huffman);
  CHECK(c.reduce_range);
  CHECK(c.to_json() == full);
  CHECK(QuantConfig::from_json(json{{"percentile", 100}}, "q").percentile == 100.0);

  const auto error = [](const json& j) {
    try {
      QuantConfig::from_json(j, "config.quantization");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error({{"bits", 4}}), Contains("unknown key 'bits' in config.quantization") &&
                                       Contains("scheme, granularity, calibration, percentile"));
  CHECK_THAT(error({{"scheme", "int4"}}), Contains("config.quantization.scheme is 'int4'") &&
                                              Contains("symmetric, affine, kmeans, pow2, binary"));
  CHECK_THAT(error({{"granularity", "per_group"}}), Contains("per_channel, per_tensor"));
  CHECK_THAT(error({{"calibration", "kl"}}), Contains("minmax, percentile, mse"));
  CHECK_THAT(error({{"float16", "fp8"}}), Contains("fp16, bf16"));
  CHECK_THAT(error({{"percentile", 50}}), Contains("percentile is 50") && Contains("(50, 100]"));
  CHECK_THAT(error({{"percentile", 100.5}}), Contains("(50, 100]"));
  CHECK_THAT(error({{"scheme", 3}}), Contains("config.quantization.scheme has the wrong type"));
  CHECK_THAT(error({{"huffman", "yes"}}), Contains("huffman must be true or false"));
  CHECK_THAT(error(json::array()), Contains("must be a JSON object"));
}

TEST_CASE("calibrate_activation on known distributions", "[quantize]") {
  // Evenly spread samples: their range is known exactly.
  const auto spread = [](float lo, float hi) {
    std::vector<float> s;
    for (int i = 0; i <= 1000; ++i) s.push_back(lo + (hi - lo) * static_cast<float>(i) / 1000);
    return s;
  };
  const std::vector<float> relu6 = spread(0.0f, 6.0f);
  const ActivationQuant u = calibrate_activation(relu6, 8, config("symmetric"), true);
  CHECK(u.scale == Approx(6.0 / 255).epsilon(1e-6));
  CHECK(u.zero_point == 0);
  CHECK(u.q_min == 0);
  CHECK(u.q_max == 255);

  const ActivationQuant a = calibrate_activation(spread(-1.0f, 3.0f), 8, config("affine"), false);
  CHECK(a.scale == Approx(4.0 / 255).epsilon(1e-6));
  CHECK(a.zero_point == 64);  // round(1 / (4 / 255)) = round(63.75)
  CHECK(a.q_min == 0);
  CHECK(a.q_max == 255);

  const ActivationQuant s =
      calibrate_activation(spread(-2.0f, 1.0f), 4, config("symmetric"), false);
  CHECK(s.scale == Approx(2.0 / 7).epsilon(1e-6));
  CHECK(s.zero_point == 0);
  CHECK(s.q_min == -7);
  CHECK(s.q_max == 7);

  CHECK(calibrate_activation(relu6, 16, config("symmetric"), true).q_max == 65535);
  // On a uniform distribution clipping only hurts at 8 bits: mse keeps (nearly) the full range.
  const ActivationQuant m =
      calibrate_activation(relu6, 8, config("symmetric", "per_tensor", "mse"), true);
  CHECK(m.scale >= 0.95 * u.scale);
  CHECK(m.scale <= u.scale);

  // ReLU outputs: zero point 0 whatever the calibration; percentile clips the long tail.
  std::mt19937_64 rng(kSeed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> relu;
  for (int i = 0; i < 20000; ++i) relu.push_back(std::max(0.0f, normal(rng)));
  for (const std::string scheme : {"symmetric", "affine"})
    for (const std::string calibration : {"minmax", "percentile", "mse"}) {
      QuantConfig c = config(scheme, "per_tensor", calibration);
      c.percentile = 99.0;
      const ActivationQuant r = calibrate_activation(relu, 4, c, true);
      CHECK(r.zero_point == 0);
      CHECK(r.q_min == 0);
      CHECK(r.q_max == 15);
      const double minmax = *std::max_element(relu.begin(), relu.end()) / 15.0;
      if (calibration == "minmax")
        CHECK(r.scale == Approx(minmax).epsilon(1e-6));
      else
        CHECK(r.scale < minmax);
    }

  // Nothing observed, or only zeros: a tiny positive scale, never 0.
  for (const auto& samples : {std::vector<float>{}, std::vector<float>(10, 0.0f)}) {
    const ActivationQuant z = calibrate_activation(samples, 8, config("affine"), false);
    CHECK(z.scale > 0.0);
    CHECK(std::isfinite(z.scale));
    CHECK(z.zero_point >= z.q_min);
    CHECK(z.zero_point <= z.q_max);
  }
}
