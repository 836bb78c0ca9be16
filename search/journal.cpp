#include "search/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "core/errors.h"
#include "core/files.h"

namespace tightfit::search {

Journal::Journal(const std::string& path, int64_t keep) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw InputError("cannot write '" + path + "': check that --out is writable");
  if (::ftruncate(fd_, keep) != 0 || ::lseek(fd_, keep, SEEK_SET) < 0)
    throw InputError("cannot truncate '" + path + "' to its last complete line");
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

void Journal::append(const nlohmann::json& j) {
  const std::string line = j.dump() + "\n";
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) throw InputError("writing the journal failed (disk full?)");
    p += n;
    left -= static_cast<size_t>(n);
  }
  ::fsync(fd_);
}

JournalContents read_journal(const std::string& path) {
  const std::string text = read_whole_file(path, "journal", "check the path");
  JournalContents c;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    if (end == std::string::npos) break;  // torn: no newline yet
    ++line_no;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text.substr(pos, end - pos));
    } catch (const nlohmann::json::parse_error&) {
      // Only the last line can be torn; garbage before it is a damaged journal.
      if (text.find('\n', end + 1) != std::string::npos)
        throw InputError("journal '" + path + "' is damaged at line " + std::to_string(line_no) +
                         "; start a new run with another --out");
      break;
    }
    if (line_no == 1 && j.is_object() && j.contains("format")) {
      if (j.value("format", "") != kJournalFormat)
        throw InputError("'" + path + "' is not a tightfit search journal");
      c.header = j;
    } else {
      c.lines.push_back(std::move(j));
    }
    pos = end + 1;
    c.complete_bytes = static_cast<int64_t>(pos);
  }
  return c;
}

}  // namespace tightfit::search
