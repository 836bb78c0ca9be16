#include "core/files.h"

#include <cstdio>
#include <fstream>

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

}  // namespace tightfit
