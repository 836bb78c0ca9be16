# Shared by demo.sh and test.sh: build settings and stage banners on stderr.
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
stage() { echo "== $1 ($(date +%T))" >&2; }
SECONDS=0
