#!/usr/bin/env bash
# The fast tests under AddressSanitizer and UndefinedBehaviorSanitizer, in their own build folder
# (build-sanitize; a cold build takes about twice the time of the normal one):
#   scripts/sanitize.sh                      fast tests (ctest -LE slow)
#   scripts/sanitize.sh -R graph             any ctest arguments instead
# Leak checking is off: LibTorch keeps process-lifetime allocations that are not leaks.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/common.sh
BUILD_DIR=${SANITIZE_BUILD_DIR:-build-sanitize}

stage "install dependencies"
scripts/install-deps.sh
stage "configure ($BUILD_DIR, ASan + UBSan)"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTIGHTFIT_BUILD_TESTS=ON \
  -DTIGHTFIT_SANITIZE=ON >/dev/null
stage "build"
cmake --build "$BUILD_DIR" -j "$JOBS"
t_build=$SECONDS

stage "test"
# LibTorch is not instrumented: allocations it makes with one operator and frees with another are
# not ours to report, and its start-up allocations live as long as the process.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:alloc_dealloc_mismatch=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ $# -eq 0 ]; then set -- -LE slow; fi
ctest --test-dir "$BUILD_DIR" --output-on-failure "$@"
echo "sanitize.sh: configure+build ${t_build}s, tests $((SECONDS - t_build))s" >&2
