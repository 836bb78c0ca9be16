#include "search/eval_pool.h"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "core/timing.h"

namespace tightfit::search {

namespace {

class ThreadPool : public EvalPool {
 public:
  ThreadPool(CandidateScorer& scorer, int64_t parallel, ScreenHook screen)
      : scorer_(scorer), arena_(static_cast<int>(parallel)), screen_(std::move(screen)) {}

  std::string name() const override { return "threads"; }

  std::vector<Evaluation> evaluate(const std::vector<EvalJob>& jobs) override {
    const auto t0 = Clock::now();
    RunStats& stats = scorer_.stats();
    std::vector<Evaluation> out(jobs.size());
    std::vector<policies::CompressedNetwork> candidates(jobs.size());
    std::vector<size_t> scored;  // the jobs the evaluator scores
    for (size_t k = 0; k < jobs.size(); ++k) {
      Evaluation& e = out[k];
      e.index = jobs[k].index;
      e.kind = jobs[k].kind;
      scorer_.cost(jobs[k].policy, e, candidates[k]);
      std::optional<double> predicted;
      if (screen_ && e.kind == "search") {
        ScopedSeconds timed(stats.screen);
        predicted = screen_(e);
      }
      if (predicted) {
        e.accuracy = *predicted;
        e.accuracy_source = "predictor";
      } else {
        scored.push_back(k);
      }
    }
    {
      ScopedSeconds timed(stats.accuracy);
      arena_.execute([&] {
        tbb::parallel_for(size_t{0}, scored.size(), [&](size_t s) {
          scorer_.accuracy(out[scored[s]], candidates[scored[s]]);
        });
      });
    }
    const double seconds = seconds_since(t0);
    for (auto& e : out) e.eval_seconds = seconds / static_cast<double>(jobs.size());
    return out;
  }

 private:
  CandidateScorer& scorer_;
  tbb::task_arena arena_;
  ScreenHook screen_;
};

}  // namespace

std::unique_ptr<EvalPool> make_thread_pool(CandidateScorer& scorer, int64_t parallel,
                                           ScreenHook screen) {
  return std::make_unique<ThreadPool>(scorer, parallel, std::move(screen));
}

}  // namespace tightfit::search
