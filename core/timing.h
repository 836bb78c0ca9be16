#pragma once
// Wall-clock timing shared by the engine, its commands and the benches.

#include <chrono>
#include <ctime>
#include <string>

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

/// The current time in UTC as ISO 8601 ("2026-12-07T14:48:21Z"), for results' context.
inline std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace tightfit
