#!/usr/bin/env bash
# Installs tightfit's build and run dependencies from Debian packages.
# Idempotent: runs `apt-get update` and `apt-get install` only when something is missing,
# and points the BLAS/LAPACK alternatives at OpenBLAS (OpenMP build), which LibTorch needs
# to be fast (Debian's default reference BLAS is ~40x slower; see README).
set -euo pipefail

PACKAGES=(
  build-essential cmake ccache pkg-config
  libtorch-dev libdnnl-dev ocl-icd-opencl-dev libtbb-dev libboost-dev
  nlohmann-json3-dev catch2 libcli11-dev zlib1g-dev
  libjpeg62-turbo-dev libpng-dev  # image-folder data sets
  libopenblas0-openmp
  dataset-fashion-mnist
  python3-torch python3-torchvision  # TorchScript fixtures made at test time (same 1.13.1 as LibTorch)
  chromium  # headless screenshots of report.html (scripts/report-screenshot.sh)
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
else
  echo "install-deps: all packages present" >&2
fi

# Select OpenBLAS (OpenMP) for BLAS and LAPACK: the pthread build would win the automatic
# choice if present and its threads fight LibTorch's OpenMP pool.
for lib in libblas.so.3 liblapack.so.3; do
  name="${lib}-x86_64-linux-gnu"
  target=$(update-alternatives --list "$name" 2>/dev/null | grep openblas-openmp | head -n1 || true)
  if [ -n "$target" ]; then
    current=$(update-alternatives --query "$name" | awk '/^Value:/{print $2}')
    if [ "$current" != "$target" ]; then
      $SUDO update-alternatives --set "$name" "$target" >&2
    fi
  fi
done
