#pragma once
// Thread affinity for measurements: the OpenMP pool that oneDNN and LibTorch share is pinned,
// one worker per CPU, for the duration of a measurement, so the scheduler cannot migrate a
// worker mid-run (on 2 shared cores one migrated worker stalls every OpenMP barrier).

#include <string>
#include <vector>

namespace tightfit::targets {

/// Pins the calling thread and the OpenMP workers of a `threads`-wide team to distinct CPUs of
/// those the process may run on (round-robin when there are more threads than CPUs); restores
/// every thread's previous CPU set when destroyed. Pinning is best effort: where the OS refuses,
/// nothing is pinned and description() says why.
class ThreadPinning {
 public:
  explicit ThreadPinning(int threads);
  ~ThreadPinning();
  ThreadPinning(const ThreadPinning&) = delete;
  ThreadPinning& operator=(const ThreadPinning&) = delete;

  bool pinned() const { return pinned_; }
  /// E.g. "pinned: threads 0,1 on cpus 0,1" or "not pinned: ...".
  const std::string& description() const { return description_; }

 private:
  int threads_ = 1;
  bool pinned_ = false;
  std::string description_;
  std::vector<std::vector<int>> previous_;  ///< per team thread, the CPUs it could use before
};

}  // namespace tightfit::targets
