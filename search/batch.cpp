#include "search/batch.h"

#include <map>

#include "core/errors.h"

namespace tightfit::search {

BatchEvaluator::BatchEvaluator(std::deque<Evaluation>& replay, EvalCache& cache, EvalPool& pool,
                               RunStats& stats, int64_t& replayed)
    : replay_(replay), cache_(cache), pool_(pool), stats_(stats), replayed_(replayed) {}

std::vector<Evaluation> BatchEvaluator::evaluate(const std::vector<policies::Policy>& batch,
                                                 int64_t first_index, const std::string& kind) {
  std::vector<Evaluation> out(batch.size());
  std::vector<Origin> origins(batch.size(), Origin::kCache);
  std::vector<EvalJob> jobs;                       // computed now
  std::vector<size_t> job_pos;                     // their positions in the batch
  std::map<std::string, size_t> first_seen;        // key -> position computed now
  std::vector<std::pair<size_t, size_t>> repeats;  // (position, position it repeats)
  for (size_t i = 0; i < batch.size(); ++i) {
    const int64_t index = first_index + static_cast<int64_t>(i);
    const std::string key = batch[i].to_json().dump();
    if (!replay_.empty()) {
      Evaluation e = replay_.front();
      replay_.pop_front();
      if (e.index != index || e.kind != kind || e.policy.to_json().dump() != key)
        throw InputError("cannot resume: evaluation " + std::to_string(index) +
                         " in the journal is not what this run asks for (another tightfit "
                         "version or strategy?); start a new run with another --out");
      ++replayed_;
      cache_.remember(key, e);  // at once: a later policy of this batch may repeat it
      out[i] = std::move(e);
      origins[i] = Origin::kJournal;
      continue;
    }
    if (const Evaluation* known = cache_.find(key)) {
      out[i] = *known;
      out[i].cached = true;
    } else if (auto it = first_seen.find(key); it != first_seen.end()) {
      repeats.emplace_back(i, it->second);
    } else {
      first_seen.emplace(key, i);
      jobs.push_back({batch[i], index, kind});
      job_pos.push_back(i);
      origins[i] = Origin::kComputed;
    }
    out[i].index = index;
    out[i].kind = kind;
  }
  stats_.computed += static_cast<int64_t>(jobs.size());
  const auto computed = pool_.evaluate(jobs);
  for (size_t k = 0; k < jobs.size(); ++k) out[job_pos[k]] = computed[k];
  for (const auto& [pos, of] : repeats) {
    const int64_t index = out[pos].index;
    out[pos] = out[of];
    out[pos].index = index;
    out[pos].cached = true;
    out[pos].eval_seconds = 0;
  }
  for (Observer* o : observers_) o->observe(out, origins);
  return out;
}

}  // namespace tightfit::search
