#!/usr/bin/env bash
# Renders RUN_DIR/report.html with headless Chromium into OUT.png and fails when the page is not
# clean: any console message (the report has no script, so any message is a defect), any file
# it loads besides itself, or any request it makes to the network.
# Usage: scripts/report-screenshot.sh RUN_DIR OUT.png   (Chromium: scripts/install-deps.sh)
set -euo pipefail
RUN_DIR=${1:?usage: $0 RUN_DIR OUT.png}
OUT=${2:?usage: $0 RUN_DIR OUT.png}
PAGE=$(realpath "$RUN_DIR")/report.html
[ -f "$PAGE" ] || { echo "report-screenshot: $PAGE is missing; run \`tightfit report --run $RUN_DIR\` first" >&2; exit 2; }
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "report-screenshot: chromium is not installed; run scripts/install-deps.sh" >&2; exit 2; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
OUT_ABS=$(realpath -m "$OUT")
rm -f "$OUT_ABS"
# --v=1 makes Chromium log each file and network request it starts; a fresh profile keeps the
# user's settings out; unresolvable hosts make sure nothing leaves the machine.
timeout 120 "$CHROMIUM" --headless --disable-gpu --no-sandbox --no-first-run \
  --user-data-dir="$TMP/profile" --disable-background-networking \
  --host-resolver-rules="MAP * ~NOTFOUND" \
  --enable-logging=stderr --v=1 \
  --screenshot="$OUT_ABS" --window-size=1400,2000 "file://$PAGE" >"$TMP/stdout" 2>"$TMP/log" \
  || { echo "report-screenshot: chromium failed (exit $?):" >&2; tail -5 "$TMP/log" >&2; exit 1; }

status=0
# Console messages and uncaught exceptions: "INFO:CONSOLE(12)] \"Uncaught ...\", source: ...".
if grep -E ":CONSOLE[:(]|Uncaught" "$TMP/log" >"$TMP/console"; then
  echo "report-screenshot: the page logged to the console:" >&2
  sed 's/^\[[^]]*\] //' "$TMP/console" >&2
  status=1
fi
# Files other than the page itself (images, stylesheets, scripts next to it).
if grep -o "FileURLLoader::Start: .*" "$TMP/log" | grep -vF "FileURLLoader::Start: file://$PAGE" \
  >"$TMP/files"; then
  echo "report-screenshot: the page loads other files:" >&2
  cat "$TMP/files" >&2
  status=1
fi
# Network requests, except Chromium's own background services (updates, time, accounts).
if grep -o "NotifyBeforeURLRequest: .*" "$TMP/log" \
  | grep -vE "https?://([a-z0-9.-]+\.)?(google\.com|googleapis\.com|gvt1\.com|gstatic\.com)/" \
  >"$TMP/net"; then
  echo "report-screenshot: the page makes network requests:" >&2
  cat "$TMP/net" >&2
  status=1
fi
[ -s "$OUT_ABS" ] || { echo "report-screenshot: no screenshot written" >&2; exit 1; }
[ "$status" -eq 0 ] && echo "report-screenshot: $OUT_ABS ($(stat -c %s "$OUT_ABS") bytes), no console errors"
exit "$status"
