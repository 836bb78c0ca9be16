#include "targets/affinity.h"

#include <omp.h>
#include <sched.h>

#include <algorithm>

namespace tightfit::targets {

namespace {

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

bool set_cpus(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;  // 0: the calling thread
}

std::string join_ints(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

}  // namespace

ThreadPinning::ThreadPinning(int threads) : threads_(std::max(1, threads)) {
  const std::vector<int> cpus = allowed_cpus();
  if (cpus.empty()) {
    description_ = "not pinned: the CPU set of this process is unknown";
    return;
  }
  previous_.assign(threads_, cpus);
  std::vector<int> ok(threads_, 0), cpu_of(threads_, -1);
  // The team runs on the calling thread (number 0) and the pool's workers; libgomp keeps the
  // same worker for the same number while the team size stays the same.
#pragma omp parallel num_threads(threads_)
  {
    const int t = omp_get_thread_num();
    if (t < threads_) {
      previous_[t] = allowed_cpus();
      cpu_of[t] = cpus[static_cast<size_t>(t) % cpus.size()];
      ok[t] = set_cpus({cpu_of[t]});
    }
  }
  pinned_ = std::all_of(ok.begin(), ok.end(), [](int v) { return v != 0; });
  std::vector<int> team(threads_);
  for (int t = 0; t < threads_; ++t) team[t] = t;
  description_ = pinned_ ? "pinned: threads " + join_ints(team) + " on cpus " + join_ints(cpu_of)
                         : "not pinned: sched_setaffinity refused";
}

ThreadPinning::~ThreadPinning() {
#pragma omp parallel num_threads(threads_)
  {
    const int t = omp_get_thread_num();
    if (t < threads_) set_cpus(previous_[t]);
  }
}

}  // namespace tightfit::targets
