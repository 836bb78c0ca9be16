#!/usr/bin/env bash
# report.html end to end: `tightfit report` on a run folder in the real front.json /
# evaluations.jsonl format (tests/search/fixtures/run), rendered by headless Chromium with no
# console errors, into a screenshot that is not blank. Also: a missing run folder is one line and
# exit code 2. Exits 77 (skipped) without Chromium.
# Usage: test_report_browser.sh path/to/tightfit [screenshot.png]
set -euo pipefail
TF=${1:?usage: $0 path/to/tightfit [screenshot.png]}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PNG=${2:-$TMP/report.png}
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  echo "skipped: chromium is not installed (scripts/install-deps.sh)"
  exit 77
fi

set +e
"$TF" report --run "$TMP/no-such-run" >/dev/null 2>"$TMP/err"
rc=$?
set -e
if [ "$rc" -ne 2 ] || [ "$(wc -l <"$TMP/err")" -ne 1 ]; then
  echo "FAIL missing run folder: exit $rc, expected 2 and one line:"; cat "$TMP/err"; exit 1
fi
echo "ok   missing run folder: $(cat "$TMP/err")"

cp -r "$HERE/fixtures/run" "$TMP/run"
printf '{"index": 99, "kind": "sea' >>"$TMP/run/evaluations.jsonl"  # a torn last line
"$TF" report --run "$TMP/run"
"$ROOT/scripts/report-screenshot.sh" "$TMP/run" "$PNG"
size=$(stat -c %s "$PNG")
if [ "$size" -le 10240 ]; then
  echo "FAIL screenshot $PNG is only $size bytes"; exit 1
fi
echo "ok   screenshot $PNG: $size bytes"
