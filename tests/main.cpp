// Entry point of every test executable: LibTorch runs single-threaded so that results (and the
// summation order of reductions) do not depend on the machine, then Catch2 takes over.

#define CATCH_CONFIG_RUNNER
#include <ATen/Parallel.h>

#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
  at::set_num_threads(1);
  return Catch::Session().run(argc, argv);
}
