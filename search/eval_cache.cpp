#include "search/eval_cache.h"

#include <filesystem>

#include "core/errors.h"
#include "core/hash.h"
#include "core/timing.h"
#include "graph/hash.h"

namespace tightfit::search {

namespace {
std::string context_key(const Session& s) {
  return fnv1a_hex(nlohmann::json{{"network", graph::content_hash(s.net)},
                                  {"evaluator", s.evaluator->name()},
                                  {"settings", s.evaluator->settings()},
                                  {"target", s.target->name()},
                                  {"measure", s.config.measure.to_json()},
                                  {"space_multiple", s.config.space.channel_multiple},
                                  {"latency_cost", s.cost->name()},
                                  {"table", s.cost->fingerprint()},
                                  {"tightfit", TIGHTFIT_VERSION}}
                       .dump());
}
}  // namespace

EvalCache::EvalCache(const Session& session, RunStats& stats, const Say& say) : stats_(stats) {
  const std::string& path = session.config.cache_path;
  if (path.empty()) return;
  context_key_ = context_key(session);
  int64_t reused = 0;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    try {  // lines torn by a killed or concurrent writer are skipped
      const auto j = nlohmann::json::parse(line);
      if (j.value("context", "") != context_key_) continue;
      entries_.emplace(j.at("policy").dump(), Evaluation::from_json(j.at("evaluation")));
      ++reused;
    } catch (const std::exception&) {
    }
  }
  const std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  shared_ = std::make_unique<std::ofstream>(path, std::ios::app);
  if (!*shared_)
    throw InputError("cannot write the evaluation cache '" + path + "': check the path");
  if (reused > 0)
    say("evaluation cache " + path + ": " + std::to_string(reused) +
        " earlier evaluations of this network, evaluator and target");
}

const Evaluation* EvalCache::find(const std::string& key) const {
  const auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

void EvalCache::remember(const std::string& key, const Evaluation& e) { entries_.emplace(key, e); }

void EvalCache::observe(const std::vector<Evaluation>& batch, const std::vector<Origin>& origins) {
  for (size_t i = 0; i < batch.size(); ++i) {
    if (origins[i] != Origin::kComputed) continue;
    const Evaluation& e = batch[i];
    remember(e.policy.to_json().dump(), e);
    if (!shared_ || !e.scored()) continue;
    ScopedSeconds timed(stats_.journal);
    *shared_ << nlohmann::json{{"context", context_key_},
                               {"policy", e.policy.to_json()},
                               {"evaluation", e.to_json()}}
                    .dump()
             << '\n'
             << std::flush;
  }
}

}  // namespace tightfit::search
