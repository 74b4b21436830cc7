#!/bin/bash
# Soak test (issue 10): one Release statusgate, a private RabbitMQ node, and
# DURATION seconds (default 1800) of mixed load: churning /ws and legacy
# subscribers, HTTP and AMQP publishes, short retention. Samples RSS,
# descriptors, store size and latency every 10 s and says whether anything
# grows. Run by hand, not in CI:
#
#   bench/soak.sh                   build git HEAD, soak 30 minutes, rewrite the
#                                   soak section of docs/BENCHMARKS.md and docs/soak.svg
#   DURATION=180 bench/soak.sh      a shorter run (also: bench/soak.sh --duration 180)
#   SRC=worktree bench/soak.sh      build the working tree instead of git HEAD
#   NO_DOCS=1 bench/soak.sh         do not touch docs/ (the section and the plot go
#                                   to the output directory)
#   OUT=DIR bench/soak.sh           keep samples.csv, logs and final.json in DIR
#                                   (default /tmp/soak-last)
#   bench/soak.sh --rate 300 --subscribers 2000 --churn 20 ...   any bench/soak.py option
#
# Needs the build dependencies, rabbitmq-server, python3-websockets and
# python3-pika (scripts/deps.sh --test installs them), and root (the broker
# runs as the rabbitmq user). Everything listens on 127.0.0.1 only. Exits
# non-zero when a subscriber saw a gap or a duplicate, a publish failed, or
# the gateway died (bench/soak.py says what it checks).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC=${SRC:-head}
OUT=${OUT:-/tmp/soak-last}
WORK=$(mktemp -d /tmp/bench-soak.XXXXXX)
BUILD=$WORK/build

log() { printf '%s soak: %s\n' "$(date +%T)" "$*" >&2; }
. "$ROOT/bench/lib.sh"

# about 2,000 sockets in the load generator, as many in the gateway
need_nofile 8192

build_statusgate "$SRC" "$BUILD" -DGW_BUILD_TESTS=OFF -DGW_BUILD_BENCH=OFF

cmd="bench/soak.sh"
[ -z "${DURATION:-}" ] || cmd="DURATION=$DURATION $cmd"
[ $# = 0 ] || cmd="$cmd $*"
rm -rf "$OUT"
mkdir -p "$OUT"
rc=0
$PY "$ROOT/bench/soak.py" --bin "$BUILD/statusgate" --rev "$REV" --command "$cmd" \
	--out "$OUT" ${NO_DOCS:+--no-docs} "$@" || rc=$?
log "samples, logs and final figures in $OUT"
rm -rf "$WORK"
exit $rc
