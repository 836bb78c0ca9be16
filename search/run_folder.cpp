#include "search/run_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

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
/// "PID on host HOST" of this process, as the lock file records its holder.
std::string holder_line() {
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "unknown");
  return "PID " + std::to_string(::getpid()) + " on host " + host;
}

}  // namespace

RunFolder::LockFd::~LockFd() {
  if (fd >= 0) ::close(fd);
}

RunFolder::RunFolder(const RunOptions& opts, const SearchConfig& config)
    : config_(config), dir_(opts.out_dir) {
  lock();
  check_writable();
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

void RunFolder::check_writable() const {
  namespace fs = std::filesystem;
  // Files written by atomic rename: the folder must take new files, and no name the search
  // writes at its end may be taken by a folder (found now, not after hours of search).
  const fs::path probe = dir_ / ".write-check";
  {
    std::ofstream out(probe);
    if (!out)
      throw InputError("cannot write in the run folder '" + dir_.string() +
                       "': " + std::strerror(errno) + "; choose a writable --out");
  }
  fs::remove(probe);
  for (const char* file :
       {"evaluations.jsonl", "front.json", "front.csv", "best.json", "report.html",
        "front.json.tmp", "front.csv.tmp", "best.json.tmp", "report.html.tmp"}) {
    const fs::path p = dir_ / file;
    if (fs::exists(p) && !fs::is_regular_file(p))
      throw InputError("'" + p.string() +
                       "' is not a file, but the search writes its results there; move it "
                       "away or choose another --out");
  }
  const fs::path models = dir_ / "models";
  if (fs::exists(models) && !fs::is_directory(models))
    throw InputError("'" + models.string() +
                     "' is not a folder, but the search writes the front's networks there; move "
                     "it away or choose another --out");
}

void RunFolder::lock() {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  const std::string path = (dir_ / ".lock").string();
  lock_.fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_.fd < 0)
    throw InputError("cannot lock the run folder: '" + path + "': " + std::strerror(errno) +
                     "; check that --out is a writable folder");
  if (::flock(lock_.fd, LOCK_EX | LOCK_NB) != 0) {
    char holder[300] = {0};
    const ssize_t n = ::pread(lock_.fd, holder, sizeof(holder) - 1, 0);
    std::string who = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "another process";
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    throw InputError("run folder '" + dir_.string() + "' is in use by another tightfit search (" +
                     who + "); wait for it to end, or choose another --out");
  }
  // The holder, for the message a second process prints; the lock itself is the flock.
  const std::string line = holder_line() + "\n";
  if (::ftruncate(lock_.fd, 0) != 0 ||
      ::pwrite(lock_.fd, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size()))
    throw InputError("cannot write the lock file '" + path + "': " + std::strerror(errno));
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
