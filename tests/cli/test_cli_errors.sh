#!/usr/bin/env bash
# Every user mistake ends in exactly one line on stderr that names the problem, exit code 2, and
# no stack trace. Usage: test_cli_errors.sh path/to/tightfit [path/to/bench_metaprune]
set -uo pipefail
TF=${1:?usage: $0 path/to/tightfit [path/to/bench_metaprune]}
BENCH=${2:-}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0
passes=0

# expect_user_error NAME PATTERN -- command...
expect_user_error() {
  local name=$1 pattern=$2
  shift 3
  "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  local lines
  lines=$(wc -l <"$TMP/err")
  if [ "$rc" -ne 2 ]; then
    echo "FAIL $name: exit code $rc, expected 2"; cat "$TMP/err"; failures=$((failures + 1)); return
  fi
  if [ "$lines" -ne 1 ]; then
    echo "FAIL $name: $lines lines on stderr, expected 1"; cat "$TMP/err"; failures=$((failures + 1)); return
  fi
  if ! grep -qE -- "$pattern" "$TMP/err"; then
    echo "FAIL $name: message does not match /$pattern/:"; cat "$TMP/err"; failures=$((failures + 1)); return
  fi
  if grep -qiE "terminate called|what\(\)|internal error" "$TMP/err"; then
    echo "FAIL $name: looks like a crash:"; cat "$TMP/err"; failures=$((failures + 1)); return
  fi
  echo "ok   $name: $(cat "$TMP/err")"
  passes=$((passes + 1))
}

# expect_bad_policy NAME POLICY PATTERN: `compress` of the fixture model with the policy JSON.
expect_bad_policy() {
  printf '%s\n' "$2" >"$TMP/policy.json"
  expect_user_error "$1" "$3" -- \
    "$TF" compress --model "$MODEL" --policy "$TMP/policy.json" --out "$TMP/c" --no-eval
}

# expect_bad_search NAME CONFIG PATTERN: `search` with the config JSON, into a fresh folder.
searches=0
expect_bad_search() {
  searches=$((searches + 1))
  printf '%s\n' "$2" >"$TMP/config.json"
  expect_user_error "$1" "$3" -- \
    "$TF" search --config "$TMP/config.json" --out "$TMP/run_$searches"
}

# A real model file to damage: the zoo vgg_small written through `compress` (no data needed).
echo '{}' >"$TMP/empty_policy.json"
"$TF" compress --model vgg_small --policy "$TMP/empty_policy.json" --out "$TMP/m" --no-eval >/dev/null \
  || { echo "FAIL setup: compress"; exit 1; }
MODEL="$TMP/m/compressed.tfn"
size=$(stat -c %s "$MODEL")
head -c $((size / 2)) "$MODEL" >"$TMP/truncated.tfn"
head -c 20 "$MODEL" >"$TMP/truncated_header.tfn"
printf 'this is not a model\n' >"$TMP/foreign.tfn"

expect_user_error "missing data set" "dataset-fashion-mnist" -- \
  "$TF" train --model vgg_small --data-dir "$TMP/no-such-dir" --out "$TMP/x.tfn"
printf '{\n  "seed": 1\n  "model": {"zoo": "vgg_small"}\n}\n' >"$TMP/malformed.json"
expect_user_error "malformed JSON" "malformed.json:3:9: malformed JSON" -- \
  "$TF" search --config "$TMP/malformed.json" --out "$TMP/run"
expect_user_error "unknown model (info)" "valid zoo models: .*resnet20" -- \
  "$TF" info --model no_such_net
expect_user_error "unknown model (train)" "unknown model 'no_such_net'; valid models: .*vgg_small" -- \
  "$TF" train --model no_such_net --out "$TMP/x.tfn"
expect_bad_search "unknown config key" '{"model": {"zoo": "vgg_small"}, "sede": 3}' \
  "unknown key 'sede'.*valid keys: seed, model"
expect_bad_search "unknown strategy key" '{"model": {"zoo": "vgg_small"}, "strategy": {"name": "random", "evals": 3}}' \
  "unknown key 'evals'.*valid keys: evaluations"
expect_bad_search "unknown strategy" '{"model": {"zoo": "vgg_small"}, "strategy": {"name": "anneal"}}' \
  "unknown strategy 'anneal'; valid strategies: evolution, netadapt, nsga2, random"
expect_bad_search "unknown space kind" '{"model": {"zoo": "vgg_small"}, "space": {"kind": "anneal"}}' \
  "kind is .anneal.; valid kinds: joint, pruning, quantization, lowrank"
printf '{"model": {"zoo": "vgg_small"}, "budget": {"size_bytes": 10}, "target": {"name": "analytic-roofline"}, "evaluator": {"name": "bn-recal", "bn_batches": 0, "validation_images": 64}}\n' >"$TMP/impossible_budget.json"
expect_user_error "impossible budget" "budget .*size_bytes.* cannot be met: the most compressed network" -- \
  "$TF" search --config "$TMP/impossible_budget.json" --out "$TMP/run_budget"
expect_bad_search "unknown latency cost" '{"model": {"zoo": "vgg_small"}, "cost": {"latency": "guess"}}' \
  "cost.latency is 'guess'; valid values: measure, lut"
expect_user_error "resume without a journal" "nothing to resume" -- \
  "$TF" search --config "$TMP/impossible_budget.json" --out "$TMP/nothing_here" --resume
expect_user_error "truncated model file" "truncated" -- "$TF" info --model "$TMP/truncated.tfn"
expect_user_error "truncated model header" "truncated" -- "$TF" info --model "$TMP/truncated_header.tfn"
expect_user_error "foreign model file" "is neither a TorchScript file .* nor a tightfit network file" -- "$TF" info --model "$TMP/foreign.tfn"
expect_bad_policy "policy with unknown decision point" '{"keep": {"no.such.layer": 0.5}}' \
  "'no.such.layer'.*valid ones: .*classifier"
expect_bad_policy "policy with unsupported bits" '{"keep": {"features.0": 0.5}, "weight_bits": {"features.0": 5}}' \
  "features.0.*5.*(allowed|valid|supported)"
expect_bad_policy "unknown criterion" '{"criterion": "magic", "keep": {"features.0": 0.5}}' \
  "criterion 'magic' is unknown; valid criteria: .*fpgm"
expect_bad_policy "unknown quantization scheme" '{"quantization": {"scheme": "ternary"}}' \
  "ternary.*symmetric"
expect_bad_policy "rank out of range" '{"rank": {"classifier.0": 1.5}}' \
  "rank for 'classifier.0' is 1.5.*\\(0, 1\\]"
expect_bad_policy "policy for a different network" '{"keep": {"layer1.0.conv1": 0.5}}' \
  "'layer1.0.conv1'.*different network"
printf '{"act_bits": {"features.0": 8}}\n' >"$TMP/act_policy.json"
expect_user_error "calibration data missing" "Fashion-MNIST file .* is missing" -- \
  "$TF" compress --model "$MODEL" --policy "$TMP/act_policy.json" --out "$TMP/c" --no-eval --data-dir "$TMP/none"
expect_user_error "missing required option" "--out is required" -- "$TF" train --model vgg_small
expect_user_error "missing config file" "cannot open" -- "$TF" search --config "$TMP/none.json" --out "$TMP/run"

expect_user_error "unknown target" "unknown target 'tpu'; valid targets: .*cpu-libtorch" -- \
  "$TF" measure --model vgg_small --target tpu
expect_user_error "unsupported precision" "does not run precision 'int4'" -- \
  "$TF" measure --model vgg_small --precision int4

printf '{"format": "tightfit-latency-table", "version": 1, "target": "cpu-onednn",' >"$TMP/corrupt_lut.json"
expect_user_error "corrupt latency table" "latency table .* is corrupt" -- \
  "$TF" profile --model vgg_small --target analytic-roofline --out "$TMP/corrupt_lut.json"
"$TF" profile --model vgg_small --target analytic-roofline --out "$TMP/lut.json" \
  --calibration-points 2 >/dev/null 2>&1 || { echo "FAIL setup: profile"; failures=$((failures + 1)); }
expect_user_error "latency table of another target" "profiled for target 'analytic-roofline', not 'analytic-bitfusion'" -- \
  "$TF" profile --model vgg_small --target analytic-bitfusion --out "$TMP/lut.json"
expect_user_error "latency table of another model" "profiled for model structure" -- \
  "$TF" profile --model resnet8 --target analytic-roofline --out "$TMP/lut.json"

# MetaPruning: a PruningNet is trained for one network (structure and weights) only.
expect_user_error "metaprune: missing model" "'.*none.tfn' is neither a network file nor a zoo model" -- \
  "$TF" metaprune train --model "$TMP/none.tfn" --out "$TMP/p.pnet"
expect_user_error "metaprune: no training steps" "--steps is 0; a PruningNet needs at least one training step" -- \
  "$TF" metaprune train --model resnet8 --steps 0 --out "$TMP/p.pnet"
expect_user_error "metaprune: unknown sampling" "--sampling is 'foo'; use banded .* or layerwise" -- \
  "$TF" metaprune train --model resnet8 --sampling foo --out "$TMP/p.pnet"
expect_user_error "metaprune: negative band" "--band is -1; it must be >= 0" -- \
  "$TF" metaprune train --model resnet8 --band -1 --out "$TMP/p.pnet"
"$TF" metaprune train --model resnet8 --steps 1 --batch-size 8 --out "$TMP/r8.pnet" >/dev/null 2>&1 \
  || { echo "FAIL setup: metaprune train"; failures=$((failures + 1)); }
expect_user_error "metaprune: PruningNet of another network" "PruningNet .*r8.pnet' was trained for network with hash [0-9a-f]+ \(model resnet8\), not [0-9a-f]+; train one .*metaprune train --model" -- \
  "$TF" metaprune train --model vgg_small --init "$TMP/r8.pnet" --steps 1 --out "$TMP/p.pnet"
expect_user_error "metaprune: foreign PruningNet file" "not a PruningNet file" -- \
  "$TF" metaprune train --model resnet8 --init "$TMP/foreign.tfn" --steps 1 --out "$TMP/p.pnet"
printf '{"model": {"zoo": "vgg_small"}, "evaluator": {"name": "pruningnet", "path": "%s"}}\n' "$TMP/none.pnet" >"$TMP/pruningnet_missing.json"
expect_user_error "pruningnet evaluator without its file" "evaluator.pruningnet.path: PruningNet file .* does not exist; train one with .tightfit metaprune train" -- \
  "$TF" search --config "$TMP/pruningnet_missing.json" --out "$TMP/run_pn"

# Proxies: an unknown one, an empty subset, a fine-tune config typo, a bad fidelity run.
expect_bad_search "unknown proxy" '{"model": {"zoo": "resnet8"}, "evaluator": {"name": "finetun"}}' \
  "unknown evaluator 'finetun'; valid evaluators: .*finetune"
printf '{"model": {"zoo": "resnet8"}, "evaluator": {"name": "bn-recal", "validation_images": 0}}\n' >"$TMP/proxy_empty.json"
expect_user_error "zero-size validation subset" "validation_images .*>= 1" -- \
  "$TF" search --config "$TMP/proxy_empty.json" --out "$TMP/run_pe"
expect_bad_search "finetune_front typo" '{"model": {"zoo": "resnet8"}, "finetune_front": {"step": 5}}' \
  "finetune_front.*valid keys.*steps"
expect_user_error "fidelity: one sample" "at least 2 samples" -- \
  "$TF" fidelity --config "$TMP/proxy_empty.json" --samples 1
printf '{"model": {"zoo": "resnet8"}}\n' >"$TMP/plain.json"
expect_user_error "fidelity: unknown proxy" "unknown evaluator 'oracle'" -- \
  "$TF" fidelity --config "$TMP/plain.json" --samples 3 --proxies oracle
expect_user_error "finetune: missing policy" "policy.json" -- \
  "$TF" finetune --model resnet8 --policy "$TMP/none/policy.json" --out "$TMP/ft"
expect_user_error "finetune: bad optimizer" "--optimizer is 'lbfgs'" -- \
  "$TF" finetune --model resnet8 --policy "$TMP/empty_policy.json" --optimizer lbfgs --out "$TMP/ft"

# Issue 19: threads, batches, paths, numbers and keys.
expect_user_error "measure: zero threads" "--threads is 0; it must be >= 1" -- \
  "$TF" measure --model vgg_small --threads 0
expect_user_error "profile: zero threads" "--threads is 0; it must be >= 1" -- \
  "$TF" profile --model vgg_small --threads 0 --out "$TMP/t0.json"
hw=$(nproc)
expect_user_error "measure: more threads than the machine" "--threads is 1000, above the $hw hardware threads.*--allow-oversubscribe" -- \
  "$TF" measure --model vgg_small --threads 1000
expect_user_error "train: more threads than the machine" "--threads is 1000, above" -- \
  "$TF" train --model vgg_small --threads 1000 --out "$TMP/x.tfn"
expect_user_error "measure: batch too large for memory" "--batch 100000000 of 1x28x28 needs about .* more than the .* of memory available" -- \
  "$TF" measure --model vgg_small --batch 100000000
expect_user_error "measure: negative batch" "--batch is -1; it must be >= 1" -- \
  "$TF" measure --model vgg_small --batch -1
expect_user_error "measure: a directory as the model" "cannot open model file '$TMP': it is a directory" -- \
  "$TF" measure --model "$TMP"
expect_user_error "info: a directory as the model" "it is a directory, not a file" -- "$TF" info --model "$TMP"
expect_user_error "measure: a directory as the policy" "cannot open '$TMP': it is a directory" -- \
  "$TF" measure --model vgg_small --policy "$TMP"
expect_user_error "measure: negative seed" "--seed: is -1; it must be an integer >= 0" -- \
  "$TF" measure --model vgg_small --seed -1
expect_user_error "train: batch too large for memory" "--batch-size 100000000 of 1x28x28 needs about" -- \
  "$TF" train --model vgg_small --batch-size 100000000 --out "$TMP/x.tfn"
expect_bad_search "negative seed" '{"seed": -1, "model": {"zoo": "vgg_small"}}' \
  "seed is -1, outside the integers it can hold.*cannot be negative"
expect_bad_search "fractional population" '{"model": {"zoo": "vgg_small"}, "strategy": {"name": "evolution", "population": 2.7}}' \
  "population must be an integer, not 2.7"
expect_bad_search "1e30 as a count" '{"model": {"zoo": "vgg_small"}, "strategy": {"name": "random", "evaluations": 1e30}}' \
  "evaluations is 1e\\+30, outside the integers"
expect_bad_search "a number no double holds" '{"model": {"zoo": "vgg_small"}, "budget": {"latency_ms": 1e999}}' \
  "config.json:1:[0-9]+: number overflow parsing '1e999'"
expect_bad_search "duplicate key" '{"seed": 1, "model": {"zoo": "vgg_small"}, "seed": 2}' \
  "config.json:1:[0-9]+: key 'seed' appears twice"
expect_bad_search "zero budget" '{"model": {"zoo": "vgg_small"}, "budget": {"latency_ms": 0}}' \
  "budget.latency_ms is 0, which no candidate meets"
expect_bad_search "threads above the machine in a config" '{"model": {"zoo": "vgg_small"}, "target": {"name": "cpu-onednn", "threads": 1000}}' \
  "target.threads is 1000, above the $hw hardware threads"
expect_bad_policy "keep and keep_count for one group" '{"keep": {"features.0": 0.5}, "keep_count": {"features.0": 8}}' \
  "decides the channels of 'features.0' twice, as keep 0.5.* and keep_count 8; give one"
expect_bad_policy "duplicate key in a policy" '{"keep": {"features.0": 0.5, "features.0": 0.25}}' \
  "key 'features.0' appears twice"
# The output folder's files are checked before the search: front.json taken by a folder.
mkdir -p "$TMP/run_taken/front.json"
expect_user_error "front.json is a folder" "run_taken/front.json' is not a file, but the search writes its results there" -- \
  "$TF" search --config "$TMP/impossible_budget.json" --out "$TMP/run_taken"
# A file the user may not read says so (run as an unprivileged user: root reads anything).
if [ "$(id -u)" = "0" ] && command -v setpriv >/dev/null; then
  mkdir -p "$TMP/perm" && chmod 755 "$TMP" "$TMP/perm"
  printf '{}\n' >"$TMP/perm/policy.json" && chmod 000 "$TMP/perm/policy.json"
  expect_user_error "policy without read permission" "cannot open '.*policy.json': permission denied" -- \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$TF" measure --model vgg_small --policy "$TMP/perm/policy.json"
  cp "$MODEL" "$TMP/perm/model.tfn" && chmod 000 "$TMP/perm/model.tfn"
  expect_user_error "model without read permission" "cannot open model file '.*model.tfn': permission denied" -- \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$TF" info --model "$TMP/perm/model.tfn"
fi

expect_user_error "model input and data differ" "model 'resnet18' takes inputs of 3x224x224 but data set 'fashion-mnist' has images of 1x28x28" -- \
  "$TF" compress --model resnet18 --policy "$TMP/empty_policy.json" --out "$TMP/c"
expect_user_error "report: a file as the run folder" "run folder '.*' is a file, not a folder" -- \
  "$TF" report --run "$TMP/empty_policy.json"
# TorchScript: export's arguments, a state_dict or a zip that is no module as --model.
expect_user_error "export: neither model nor run" "give --model .* or --run with --member" -- \
  "$TF" export --out "$TMP/x.pt"
expect_user_error "export: run without its models" "has no models/ folder" -- \
  "$TF" export --run "$TMP" --member 3 --out "$TMP/x.pt"
printf 'PK\003\004 not really a zip' >"$TMP/fake.pt"
expect_user_error "a zip that is no TorchScript" "cannot load TorchScript file '.*fake.pt'" -- \
  "$TF" info --model "$TMP/fake.pt"
expect_user_error "a bad --input-shape" "--input-shape is '3,64'; give the per-sample input shape as C,H,W" -- \
  "$TF" info --model vgg_small --input-shape 3,64

"$TF" --help >/dev/null || { echo "FAIL --help"; failures=$((failures + 1)); }
for sub in info train search compress measure profile finetune fidelity report export; do
  "$TF" "$sub" --help >/dev/null || { echo "FAIL $sub --help"; failures=$((failures + 1)); }
done
"$TF" metaprune train --help >/dev/null || { echo "FAIL metaprune train --help"; failures=$((failures + 1)); }

# Bench programs parse their arguments through one helper: the same one line and exit code 2.
if [ -n "$BENCH" ]; then
  expect_user_error "bench: thread count below 1" "bench_metaprune: error: --threads: is 0; it must be >= 1" -- \
    "$BENCH" --threads 0
  expect_user_error "bench: more threads than the machine" "bench_metaprune: error: --threads is 1000, above" -- \
    "$BENCH" --threads 1000
  expect_user_error "bench: unknown option" "bench_metaprune: error: .*--bogus" -- "$BENCH" --bogus
  expect_user_error "bench: bad FLOPs level" "--levels: '1.5' is not a FLOPs fraction" -- \
    "$BENCH" --levels 1.5
  "$BENCH" --help >/dev/null || { echo "FAIL bench_metaprune --help"; failures=$((failures + 1)); }
fi

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
