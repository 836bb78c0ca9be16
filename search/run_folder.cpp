#include "search/run_folder.h"

#include <algorithm>

#include "core/errors.h"
#include "core/timing.h"

namespace tightfit::search {

namespace {
/// The JSON pointers at which two configs differ (at most a few, for the message).
std::string config_difference(const nlohmann::json& before, const nlohmann::json& now) {
  std::vector<std::string> paths;
  for (const auto& op : nlohmann::json::diff(before, now)) {
    const std::string p = op.value("path", std::string("/"));
    if (std::find(paths.begin(), paths.end(), p) == paths.end()) paths.push_back(p);
  }
  constexpr size_t kShown = 5;
  std::string out;
  for (size_t i = 0; i < paths.size() && i < kShown; ++i) out += (i ? ", " : "") + paths[i];
  if (paths.size() > kShown) out += " and " + std::to_string(paths.size() - kShown) + " more";
  return out;
}
}  // namespace

RunFolder::RunFolder(const RunOptions& opts, const SearchConfig& config)
    : config_(config), dir_(opts.out_dir) {
  const std::string journal = journal_path();
  if (!opts.resume) {
    if (std::filesystem::exists(journal) && std::filesystem::file_size(journal) > 0)
      throw InputError(journal +
                       " exists: continue that run with --resume, or choose another --out "
                       "(a journal is never overwritten)");
    return;
  }
  if (!std::filesystem::exists(journal))
    throw InputError("nothing to resume: no " + journal + "; run without --resume");
  previous_ = read_journal(journal);
  for (const auto& line : previous_.lines) {
    try {
      replay_.push_back(Evaluation::from_json(line));
    } catch (const std::exception& e) {
      throw InputError("journal '" + journal + "' holds a line that is not an evaluation (" +
                       e.what() + "); start a new run with another --out");
    }
  }
  if (previous_.header.is_null())
    throw InputError("cannot resume: " + journal + " has no header; run again elsewhere");
  if (previous_.header.value("config_hash", "") != config.hash)
    throw InputError(
        "cannot resume: the config changed since this run started (at " +
        config_difference(previous_.header.value("config", nlohmann::json()), config.raw) +
        "); use the original config, or a new --out for a new run");
}

Journal& RunFolder::open_journal() {
  std::filesystem::create_directories(dir_);
  journal_ = std::make_unique<Journal>(journal_path(), previous_.complete_bytes);
  if (previous_.complete_bytes == 0)
    journal_->append({{"format", kJournalFormat},
                      {"version", 1},
                      {"config_hash", config_.hash},
                      {"config", config_.raw},
                      {"started", now_utc()}});
  return *journal_;
}

}  // namespace tightfit::search
