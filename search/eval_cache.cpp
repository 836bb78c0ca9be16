#include "search/eval_cache.h"

#include <ATen/core/Tensor.h>

#include <filesystem>

#include "core/errors.h"
#include "core/hash.h"
#include "core/timing.h"
#include "graph/hash.h"
#include "targets/target.h"

namespace tightfit::search {

namespace {

uint64_t hash_images(const datasets::ImageSet& set, uint64_t h) {
  const int64_t shape[3] = {set.channels, set.rows, set.cols};
  h = fnv1a(shape, sizeof(shape), h);
  h = fnv1a(set.pixels.data(), set.pixels.size(), h);
  return fnv1a(set.labels.data(), set.labels.size(), h);
}

/// The data a result was measured on: the data set and its settings (its folder made absolute),
/// the split, and the images' own content, so that a folder whose files changed is new data.
nlohmann::json data_identity(const Session& s) {
  nlohmann::json settings = s.config.dataset_config;
  for (auto it = settings.begin(); it != settings.end(); ++it)
    if ((it.key() == "dir" || it.key() == "root" || it.key() == "train" || it.key() == "test") &&
        it->is_string())
      *it = std::filesystem::weakly_canonical(it->get<std::string>()).string();
  uint64_t h = hash_images(s.data.train, fnv1a("tightfit data", 13));
  h = hash_images(s.data.test, hash_images(s.data.validation, h));
  for (const auto* norm : {&s.data.mean, &s.data.std})
    h = fnv1a(norm->data(), norm->size() * sizeof(float), h);
  return {{"name", s.config.dataset},
          {"settings", settings},
          {"split",
           {{"train", s.data.train.size()},
            {"validation", s.data.validation.size()},
            {"test", s.data.test.size()},
            {"validation_count", s.config.validation_count}}},
          {"images", hex64(h)}};
}

}  // namespace

nlohmann::json cache_context(const Session& s) {
  nlohmann::json calibration_sizes = nlohmann::json::array();
  for (const auto& batch : s.calibration.images) calibration_sizes.push_back(batch.size(0));
  const nlohmann::json machine = targets::machine_context();
  return {{"network", graph::content_hash(s.net)},
          {"data", data_identity(s)},
          {"calibration", {{"seed", s.config.seed}, {"batches", calibration_sizes}}},
          {"evaluator", s.evaluator->name()},
          {"settings", s.evaluator->settings()},
          {"target", s.target->name()},
          {"measure", s.config.measure.to_json()},
          {"machine", {{"cpu", machine.at("cpu")}, {"isa", machine.at("isa")}}},
          {"space_multiple", s.channel_multiple},
          {"latency_cost", s.cost->name()},
          {"table", s.cost->fingerprint()},
          {"tightfit", TIGHTFIT_VERSION}};
}

EvalCache::EvalCache(const Session& session, RunStats& stats, const Say& say) : stats_(stats) {
  const std::string& path = session.config.cache_path;
  if (path.empty()) return;
  context_key_ = fnv1a_hex(cache_context(session).dump());
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
