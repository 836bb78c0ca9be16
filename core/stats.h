#pragma once
// Statistics of plain samples, shared by the timing protocol, the proxy-fidelity report, the
// accuracy predictor and the benches: one definition of each, so a median or a quartile means the
// same thing in every result. Mean, variance, median and Pearson's correlation are Boost.Math's
// (boost/math/statistics); the quantile (linear interpolation between order statistics) and
// Kendall's tau-b stay hand-written, as Boost 1.74 has neither.
//
// An empty sample gives 0 where a number is expected (the callers report "nothing measured"
// that way); a correlation that is undefined (a constant list) is NaN.

#include <vector>

namespace tightfit {

/// Arithmetic mean; 0 for an empty sample.
double mean(const std::vector<double>& v);

/// Population variance (squared deviations from the mean over n); 0 for an empty sample.
double variance(const std::vector<double>& v);

/// Sample variance (squared deviations from the mean over n - 1); 0 for fewer than two values.
double sample_variance(const std::vector<double>& v);

/// Sample standard deviation, sqrt(sample_variance(v)); 0 for fewer than two values.
double sample_stddev(const std::vector<double>& v);

/// The middle value, or the mean of the two middle values for an even count; 0 when empty.
double median(std::vector<double> v);

/// The q-quantile (q in [0, 1]) interpolating linearly between the order statistics around
/// position q (n - 1) of the sorted sample (Hyndman and Fan's type 7, R's and NumPy's default);
/// 0 when empty.
double quantile(std::vector<double> v, double q);

/// Interquartile range quantile(v, 0.75) - quantile(v, 0.25); 0 when empty.
double interquartile_range(const std::vector<double>& v);

/// Pearson's correlation of the pairs (x[i], y[i]), in [-1, 1]. NaN when x or y is constant or
/// there are fewer than 2 pairs. x and y must have the same length.
double pearson_correlation(const std::vector<double>& x, const std::vector<double>& y);

/// 1-based ranks of `x` in ascending order; tied values share the mean of the ranks they span
/// (so {10, 20, 20, 30} -> {1, 2.5, 2.5, 4}). No value may be NaN.
std::vector<double> average_ranks(const std::vector<double>& x);

/// Spearman's rho: pearson_correlation(average_ranks(x), average_ranks(y)). NaN when x or y is
/// constant or there are fewer than 2 pairs. Same length, no NaN.
double spearman_rho(const std::vector<double>& x, const std::vector<double>& y);

/// Kendall's tau-b of the pairs (x[i], y[i]): (C - D) / sqrt((n0 - n1) (n0 - n2)), with C and D
/// the concordant and discordant pairs, n0 = n (n - 1) / 2 and n1, n2 the pairs tied in x and in
/// y. O(n^2). NaN when x or y is constant or there are fewer than 2 pairs. Same length, no NaN.
double kendall_tau_b(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace tightfit
