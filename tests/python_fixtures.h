#pragma once
// Fixtures that Debian's python3-torch and python3-torchvision write at test time (TorchScript
// modules, torch.save files, image folders), made once per build tree.

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace tightfit::test {

/// `dir`, after running tests/SCRIPT with ARGS there when `marker` is missing in it or older
/// than the script. The script runs with /usr/bin/python3: a python3 earlier on PATH (pyenv)
/// would not see Debian's torch.
inline std::filesystem::path python_fixture(const std::filesystem::path& dir,
                                            const std::string& marker,
                                            const std::string& script_and_args) {
  namespace fs = std::filesystem;
  const fs::path script = fs::path(TIGHTFIT_SOURCE_DIR) / "tests" /
                          script_and_args.substr(0, script_and_args.find(' '));
  if (!fs::exists(dir / marker) ||
      (fs::exists(script) && fs::last_write_time(script) > fs::last_write_time(dir / marker))) {
    std::filesystem::create_directories(dir);
    const std::string cmd = "/usr/bin/python3 " + std::string(TIGHTFIT_SOURCE_DIR) + "/tests/" +
                            script_and_args + " > " + (dir / "make.log").string() + " 2>&1";
    INFO("needs python3-torch and python3-torchvision (scripts/install-deps.sh); see "
         << (dir / "make.log").string() << ": " << cmd);
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  return dir;
}

}  // namespace tightfit::test
