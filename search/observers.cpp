#include "search/observers.h"

#include <iomanip>
#include <sstream>

#include "search/controller.h"
#include "search/outputs.h"
#include "search/screen.h"

namespace tightfit::search {

void JournalObserver::observe(const std::vector<Evaluation>& batch,
                              const std::vector<Origin>& origins) {
  ScopedSeconds timed(stats_.journal);
  for (size_t i = 0; i < batch.size(); ++i)
    if (origins[i] != Origin::kJournal) journal_.append(batch[i].to_json());
}

void ArchiveObserver::observe(const std::vector<Evaluation>& batch, const std::vector<Origin>&) {
  for (const auto& e : batch) {
    if (e.kind == "baseline") continue;
    if (is_real_score(e)) best_accuracy_ = std::max(best_accuracy_, e.accuracy);
    result_.evaluations.push_back(e);
  }
}

ProgressObserver::ProgressObserver(const SearchConfig& config, const SearchResult& result,
                                   const ArchiveObserver& archive, int64_t uniforms,
                                   Clock::time_point start, const Say& say)
    : result_(result), archive_(archive), say_(say), start_(start) {
  if (config.strategy_config.contains("evaluations"))
    total_ = config.strategy_config["evaluations"].get<int64_t>() + uniforms;
}

void ProgressObserver::observe(const std::vector<Evaluation>& batch,
                               const std::vector<Origin>& origins) {
  // Search batches only, and not while the journal is replayed.
  if (batch.empty() || batch.front().kind != "search" || origins.back() == Origin::kJournal) return;
  const double elapsed = seconds_since(start_);
  const auto done = static_cast<int64_t>(result_.evaluations.size());
  const int64_t fresh = done - result_.replayed;
  std::ostringstream os;
  os << done << (total_ > 0 ? "/" + std::to_string(total_) : "") << " evaluations"
     << "  best accuracy " << std::fixed << std::setprecision(4) << archive_.best_accuracy()
     << "  front " << pareto_front(result_.evaluations).size() << "  hypervolume "
     << std::setprecision(4) << relative_hypervolume(result_.evaluations, result_.baseline) << "  "
     << std::setprecision(0) << elapsed << "s";
  if (total_ > 0 && fresh > 0)
    os << "  ETA " << elapsed / static_cast<double>(fresh) * static_cast<double>(total_ - done)
       << "s";
  say_(os.str());
}

}  // namespace tightfit::search
