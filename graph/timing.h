#pragma once
// Wall-clock timing shared by the engine, its commands and the benches.

#include <chrono>

namespace tightfit {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// Adds the seconds between its construction and its destruction to `sum`.
class ScopedSeconds {
 public:
  explicit ScopedSeconds(double& sum) : sum_(sum), t0_(Clock::now()) {}
  ~ScopedSeconds() { sum_ += seconds_since(t0_); }
  ScopedSeconds(const ScopedSeconds&) = delete;
  ScopedSeconds& operator=(const ScopedSeconds&) = delete;

 private:
  double& sum_;
  Clock::time_point t0_;
};

}  // namespace tightfit
