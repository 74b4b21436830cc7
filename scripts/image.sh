#!/usr/bin/env bash
# Builds the container image from the Dockerfile with podman and prints its
# size. IMAGE names it (default statusgate:latest); extra arguments go to
# `podman build` (e.g. --no-cache).
#
#   scripts/image.sh
#   IMAGE=statusgate:1.0 scripts/image.sh --no-cache
#
# On the project's machines there is no Docker engine and no registry: when
# podman or the debian:12 / debian:12-slim base images are missing, it runs
# ../shared/tools/podman-base (as root; installs podman with runc and makes the
# base images from Debian's archive). Without that tool, install podman (or use
# `docker build -t statusgate .`) yourself. --format docker keeps the
# Dockerfile's HEALTHCHECK, which the OCI format has no field for.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
image="${IMAGE:-statusgate:latest}"
podman_base="$here/../shared/tools/podman-base"

have_base() {
  command -v podman >/dev/null 2>&1 &&
    podman image exists docker.io/library/debian:12 &&
    podman image exists docker.io/library/debian:12-slim
}

if ! have_base; then
  if [ ! -x "$podman_base" ]; then
    echo "image.sh: podman or the debian:12 and debian:12-slim images are missing," \
         "and $podman_base is not there to make them" >&2
    exit 1
  fi
  [ "$(id -u)" = 0 ] || { echo "image.sh: $podman_base must run as root" >&2; exit 1; }
  # podman-base keeps its images when debian:12-slim exists: make both again
  # when only one of them is there
  rebuild=0
  command -v podman >/dev/null 2>&1 && podman image exists docker.io/library/debian:12-slim && rebuild=1
  echo "image.sh: setting up podman and the Debian base images ($podman_base)"
  REBUILD=$rebuild "$podman_base"
  have_base || { echo "image.sh: $podman_base ran but podman or a base image is still missing" >&2; exit 1; }
fi

podman build --format docker -t "$image" -f "$here/Dockerfile" "$@" "$here"
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image.sh: built $image, $((size / 1000000)) MB ($size bytes)"
