#!/bin/bash
# From PyTorch and back, end to end, as the README tells a user to do it:
#   1. Fashion-MNIST written out as an ImageFolder tree of 3-channel 32x32 PNG and JPEG files;
#   2. a torchvision ResNet-18 trained briefly on it in Python and saved as TorchScript
#      (examples/pytorch/train.py), whose channel groups `tightfit info` lists;
#   3. a cpu-onednn latency table profiled for it, then examples/pytorch.json searched (joint
#      pruning and weight bits, BN-recalibrated accuracy on val/, front exported as TorchScript);
#   4. front members loaded in Python (examples/pytorch/evaluate.py) score on val/ the accuracy
#      the search reported, within 0.5 points, with the parameter count it reported.
# Usage: test_pytorch_roundtrip.sh TIGHTFIT SOURCE_DIR FASHION_MNIST_DIR WORK_DIR
set -euo pipefail
tf=$1 src=$2 fmnist=$3 work=$4
py=/usr/bin/python3  # Debian's python3-torch; a pyenv python3 on PATH would not see it
rm -rf "$work"
mkdir -p "$work/runs/pytorch"
cd "$work"  # examples/pytorch.json names its files under runs/pytorch, relative to here

$py "$src/tests/datasets/make_image_folder.py" "$fmnist" runs/pytorch 100 20 32 >/dev/null
$py "$src/examples/pytorch/train.py" runs/pytorch/images runs/pytorch/model.pt --epochs 3
# The imported model's channel groups: ResNet-18's 12 prunable ones (residual streams coupled).
"$tf" info --model runs/pytorch/model.pt --input-shape 3,32,32 >runs/pytorch/info.txt
grep -q "^channel decision points (12)" runs/pytorch/info.txt
grep -q "^  layer2.0.conv1 .* 128 ch" runs/pytorch/info.txt
"$tf" profile --model runs/pytorch/model.pt --input-shape 3,32,32 --target cpu-onednn \
  --space "$src/examples/pytorch.json" --out runs/pytorch/lut.json --min-time-ms 5 \
  --calibration-points 2 --curves 0 >/dev/null
"$tf" search --config "$src/examples/pytorch.json" --out runs/pytorch/search >/dev/null

$py - "$src/examples/pytorch" <<'PYEOF'
import json, subprocess, sys
examples = sys.argv[1]
front = json.load(open("runs/pytorch/search/front.json"))
baseline = front["baseline"]
members = sorted(front["front"], key=lambda m: m["params"])
assert members, "empty front"
# The smallest member, and the largest one when it differs.
checked = [members[0]] + ([members[-1]] if len(members) > 1 else [])
print("baseline: accuracy %.4f, %d params" % (baseline["accuracy"], baseline["params"]))
assert baseline["accuracy"] > 0.3, "the briefly trained model should beat chance clearly"
for m in checked:
    model = "runs/pytorch/search/models/%d.pt" % m["index"]
    out = subprocess.run([sys.executable, examples + "/evaluate.py", model,
                          "runs/pytorch/images/val"], check=True, capture_output=True, text=True,
                         cwd=".", env={"PYTHONPATH": examples})
    got = json.loads(out.stdout)
    print("member %d: tightfit %.4f, python %.4f on %d images; %d params (tightfit %d)"
          % (m["index"], m["accuracy"], got["accuracy"], got["images"], got["params"],
             m["params"]))
    assert got["images"] == 200
    assert abs(got["accuracy"] - m["accuracy"]) <= 0.005, "accuracy differs"
    assert got["params"] == m["params"], "parameter count differs"
assert members[0]["params"] < baseline["params"], "the smallest member should be smaller"
PYEOF
echo "PASS"
