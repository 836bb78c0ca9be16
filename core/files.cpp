#include "core/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/errors.h"

namespace tightfit {

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      throw InputError("cannot write '" + path + "': check the folder exists and is writable");
    out << text;
    out.flush();
    if (!out) throw InputError("cannot write '" + path + "' (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw InputError("cannot rename '" + tmp + "' to '" + path +
                     "'; check the folder's permissions");
}

namespace {
/// Why `path` cannot be read as a regular file, or "" when it can.
std::string unreadable_reason(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::strerror(errno);
  if (S_ISDIR(st.st_mode)) return "it is a directory, not a file";
  if (!S_ISREG(st.st_mode)) return "it is not a regular file";
  if (::access(path.c_str(), R_OK) != 0) return std::strerror(errno);
  return "";
}

std::string lower_first(std::string s) {
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}
}  // namespace

bool file_starts_with(const std::string& path, const std::string& magic) {
  std::ifstream in(path, std::ios::binary);
  std::string head(magic.size(), '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  return in.gcount() == static_cast<std::streamsize>(magic.size()) && head == magic;
}

void check_readable_file(const std::string& path, const std::string& what, const std::string& fix) {
  const std::string reason = unreadable_reason(path);
  if (!reason.empty())
    throw InputError("cannot open " + (what.empty() ? "" : what + " ") + "'" + path +
                     "': " + lower_first(reason) + "; " + fix);
}

std::string read_whole_file(const std::string& path, const std::string& what,
                            const std::string& fix) {
  check_readable_file(path, what, fix);
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in && !in.eof())
    throw InputError("cannot read " + (what.empty() ? "" : what + " ") + "'" + path +
                     "': read error; " + fix);
  return ss.str();
}

}  // namespace tightfit
