#pragma once
// Two kinds of failure (STYLE.md 5): mistakes a user can make end in one clear line and exit
// code 2 (ConfigError, InputError, both carrying the fix); broken internal invariants are bugs
// and go through TIGHTFIT_CHECK, which names the file and line.

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <string>

namespace tightfit {

/// A user mistake: bad input file, path, model, policy, data. The message says what and how to fix.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A user mistake in a configuration (JSON config, policy file, command-line values).
class ConfigError : public InputError {
 public:
  using InputError::InputError;
};

/// An internal invariant that does not hold: a bug in tightfit, never a user mistake.
class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// An exception's message without the C++ backtrace LibTorch appends ("Exception raised
/// from ...", "frame #0: ..."): what a user reads.
inline std::string without_backtrace(const std::string& what) {
  size_t cut = what.size();
  for (const char* marker : {"\nException raised from", "\nframe #"})
    cut = std::min(cut, what.find(marker));
  return what.substr(0, cut);
}

namespace detail {
[[noreturn]] inline void check_failed(const char* cond, const char* file, int line,
                                      const std::string& msg) {
  std::ostringstream os;
  os << "internal error: " << cond << " failed at " << file << ":" << line;
  if (!msg.empty()) os << ": " << msg;
  throw InternalError(os.str());
}
}  // namespace detail

}  // namespace tightfit

#define TIGHTFIT_CHECK(cond, msg)                                                            \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::ostringstream tightfit_check_os_;                                                 \
      tightfit_check_os_ << msg;                                                             \
      ::tightfit::detail::check_failed(#cond, __FILE__, __LINE__, tightfit_check_os_.str()); \
    }                                                                                        \
  } while (0)
