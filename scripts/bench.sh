#!/usr/bin/env bash
# scripts/bench.sh NAME [ARGS]: builds (Release) and runs the benchmark program bench/NAME.cpp.
# Every bench program prints a table and writes JSON (--out FILE; default bench/results/NAME.json).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
if [ $# -lt 1 ]; then
  echo "usage: scripts/bench.sh NAME [ARGS]; benchmarks: $(cd bench && ls *.cpp | grep -v bench_util | sed 's/\.cpp$//' | tr '\n' ' ')" >&2
  exit 2
fi
name=$1
shift
if [ ! -f "bench/$name.cpp" ]; then
  echo "scripts/bench.sh: unknown benchmark '$name'; benchmarks: $(cd bench && ls *.cpp | grep -v bench_util | sed 's/\.cpp$//' | tr '\n' ' ')" >&2
  exit 2
fi
scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" --target "bench_$name" -j "$JOBS"
exec "$BUILD_DIR/bench/bench_$name" "$@"
