#!/usr/bin/env bash
# tightfit's main job, end to end: install dependencies, build, train the small VGG-style CNN on
# Fashion-MNIST (skipped when runs/models/vgg_small.tfn exists), then search compression policies
# and print the Pareto front (runs/demo/front.json, front.csv, evaluations.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/common.sh
MODEL=runs/models/vgg_small.tfn

stage "install dependencies"
scripts/install-deps.sh
t_install=$SECONDS

stage "build"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" --target tightfit -j "$JOBS"
t_build=$SECONDS

if [ -f "$MODEL" ]; then
  stage "train: reusing $MODEL (delete it to train again)"
else
  stage "train vgg_small (3 epochs, Adam)"
  "$BUILD_DIR/tightfit" train --model vgg_small --epochs 3 --seed 1 --threads 2 --out "$MODEL"
fi
t_train=$SECONDS

stage "search (examples/demo.json)"
# A search never overwrites its journal: the demo starts a fresh run each time.
rm -rf runs/demo
"$BUILD_DIR/tightfit" search --config examples/demo.json --out runs/demo
t_search=$SECONDS

echo "demo.sh: install $((t_install))s, build $((t_build - t_install))s, train $((t_train - t_build))s, search $((t_search - t_train))s" >&2
