#pragma once
// What this machine offers a run, checked before work starts (issue 19): hardware threads (the
// CPUs this process may run on, so a Slurm or taskset allocation counts, not the whole board)
// and available memory. Thread counts above the hardware threads measure contention rather than
// the network, so they are a user error unless oversubscription is asked for explicitly
// (`--allow-oversubscribe`, or TIGHTFIT_ALLOW_OVERSUBSCRIBE=1 in the environment).

#include <cstdint>
#include <string>

namespace tightfit {

/// CPUs this process may run on (sched_getaffinity), at least 1.
int hardware_threads();

/// Allows thread counts above hardware_threads() for the rest of the process.
void allow_oversubscribe(bool allow);
bool oversubscribe_allowed();

/// ConfigError naming `what` when `threads` is below 1, or above hardware_threads() while
/// oversubscription is not allowed.
void check_threads(int64_t threads, const std::string& what);

/// Bytes the kernel reports as available (MemAvailable, bounded by a cgroup v2 limit); 0 when
/// unknown.
int64_t available_memory_bytes();

/// InputError naming `what` and both sizes when `bytes` exceeds available memory (no check when
/// it is unknown).
void check_memory(int64_t bytes, const std::string& what, const std::string& fix);

/// "313.6 GB", "12.0 MB": a byte count for messages.
std::string format_bytes(double bytes);

}  // namespace tightfit
