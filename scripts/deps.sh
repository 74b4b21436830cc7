#!/usr/bin/env bash
# Installs what statusgate needs on Debian 12: build tools and libraries, and
# with --test also RabbitMQ, the Python and Node test clients, Chromium,
# clang with libFuzzer, and the tools of the fault tests (loop devices and
# ext4, chattr, network namespaces and nftables).
# (podman for the image test comes with scripts/image.sh, which the test runs.)
# Idempotent: packages already present are not fetched again.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

BUILD_PKGS="build-essential cmake pkg-config libwebsockets-dev libwebsockets-evlib-ev libev-dev librabbitmq-dev libjansson-dev libsqlite3-dev libssl-dev curl ca-certificates"
# clang + libclang-rt-14-dev: libFuzzer and the sanitizer runtimes for
# scripts/fuzz.sh (clang only recommends the runtime library); e2fsprogs,
# mount, iproute2, nftables: the fault tests (loop devices and ext4, chattr,
# network namespaces and packet drops)
TEST_PKGS="openssl rabbitmq-server amqp-tools python3 python3-websockets python3-pika python3-yaml chromium sqlite3 procps nginx clang libclang-rt-14-dev e2fsprogs mount iproute2 nftables"

want="$BUILD_PKGS"
[ "${1:-}" = "--test" ] && want="$want $TEST_PKGS"
command -v node >/dev/null 2>&1 || { [ "${1:-}" = "--test" ] && want="$want nodejs npm"; }

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
if [ -n "$missing" ]; then
  echo "deps: installing$missing"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
# Debian starts rabbitmq-server on install where it can; tests start their own.
if [ "${1:-}" = "--test" ]; then
  here="$(cd "$(dirname "$0")/.." && pwd)"
  # the manifest lives in tests/, the packages in .deps/node (gitignored),
  # so no third-party code sits among the project's tests
  node_dir="$here/.deps/node"
  if [ ! -d "$node_dir/node_modules/playwright-core" ] ||
     ! cmp -s "$here/tests/package-lock.json" "$node_dir/package-lock.json"; then
    echo "deps: installing playwright-core (drives Debian's chromium; no browser download)"
    mkdir -p "$node_dir"
    cp "$here/tests/package.json" "$here/tests/package-lock.json" "$node_dir/"
    (cd "$node_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
  fi
fi
