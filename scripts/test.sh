#!/usr/bin/env bash
# tightfit's test command: install dependencies, configure, build, run every CTest test.
#   scripts/test.sh                        everything (the slow label adds ~3 min)
#   TIGHTFIT_TEST_FAST=1 scripts/test.sh   leaves out the tests labelled "slow"
# BUILD_DIR (default: build) and JOBS (default: nproc) can be set in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/common.sh

stage "install dependencies"
scripts/install-deps.sh
t_install=$SECONDS

stage "configure"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DTIGHTFIT_BUILD_TESTS=ON >/dev/null
stage "build"
cmake --build "$BUILD_DIR" -j "$JOBS"
t_build=$SECONDS

stage "test"
label_args=()
if [ "${TIGHTFIT_TEST_FAST:-0}" = "1" ]; then label_args=(-LE slow); fi
# LibTorch and OpenBLAS use their own thread pools: one test process at a time keeps timings sane.
ctest --test-dir "$BUILD_DIR" --output-on-failure "${label_args[@]}"
t_test=$SECONDS

echo "test.sh: install $((t_install))s, configure+build $((t_build - t_install))s, tests $((t_test - t_build))s" >&2
