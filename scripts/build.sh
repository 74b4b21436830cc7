#!/usr/bin/env bash
# Configures and builds statusgate into BUILD_DIR (default ./build).
# GW_SANITIZE=1 builds with AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dir="${BUILD_DIR:-$here/build}"
cmake -S "$here" -B "$dir" -DGW_WERROR=ON -DGW_SANITIZE="${GW_SANITIZE:-0}" \
      -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
