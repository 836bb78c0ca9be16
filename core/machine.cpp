#include "core/machine.h"

#include <sched.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/errors.h"

namespace tightfit {

namespace {
std::atomic<bool> g_oversubscribe{false};

bool env_allows() {
  const char* v = std::getenv("TIGHTFIT_ALLOW_OVERSUBSCRIBE");
  return v != nullptr && std::string(v) == "1";
}

/// The cgroup v2 memory limit of this process's group minus its usage; -1 when none.
int64_t cgroup_headroom() {
  std::ifstream max_file("/sys/fs/cgroup/memory.max"), cur_file("/sys/fs/cgroup/memory.current");
  std::string max_text;
  int64_t current = 0;
  if (!(max_file >> max_text) || max_text == "max" || !(cur_file >> current)) return -1;
  try {
    const int64_t limit = std::stoll(max_text);
    return limit > current ? limit - current : 0;
  } catch (const std::exception&) {
    return -1;
  }
}
}  // namespace

int hardware_threads() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  const int n = CPU_COUNT(&set);
  return n > 0 ? n : 1;
}

void allow_oversubscribe(bool allow) { g_oversubscribe = allow; }

bool oversubscribe_allowed() { return g_oversubscribe || env_allows(); }

void check_threads(int64_t threads, const std::string& what) {
  if (threads < 1) throw ConfigError(what + " is " + std::to_string(threads) + "; it must be >= 1");
  const int hw = hardware_threads();
  if (threads > hw && !oversubscribe_allowed())
    throw ConfigError(what + " is " + std::to_string(threads) + ", above the " +
                      std::to_string(hw) +
                      " hardware threads this process may use (timings would measure "
                      "contention); use at most " +
                      std::to_string(hw) + ", or pass --allow-oversubscribe");
}

int64_t available_memory_bytes() {
  std::ifstream info("/proc/meminfo");
  int64_t available = 0;
  for (std::string line; std::getline(info, line);) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream ss(line.substr(13));
    int64_t kb = 0;
    if (ss >> kb) available = kb * 1024;
  }
  const int64_t headroom = cgroup_headroom();
  if (headroom >= 0 && (available == 0 || headroom < available)) available = headroom;
  return available;
}

void check_memory(int64_t bytes, const std::string& what, const std::string& fix) {
  const int64_t available = available_memory_bytes();
  if (available > 0 && bytes > available)
    throw InputError(what + " needs about " + format_bytes(static_cast<double>(bytes)) +
                     ", more than the " + format_bytes(static_cast<double>(available)) +
                     " of memory available; " + fix);
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  int u = 0;
  while (bytes >= 1000 && u < 6) {
    bytes /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

}  // namespace tightfit
