#!/bin/bash
# Scale-out benchmark (SPEC section 7, docs/SCALING.md): one and three
# gateways on one private RabbitMQ node, WebSocket receivers spread over them,
# events published over AMQP. Run by hand, not in CI:
#
#   bench/scaleout.sh                 build, run, print the medians and rewrite
#                                     the measured block of docs/SCALING.md
#   REPS=1 bench/scaleout.sh          fewer repetitions (default 3)
#   SCENARIOS=ingest,conn bench/scaleout.sh   only some (backlog ingest fanout rate conn drain)
#   INSTANCES=1,2,3 bench/scaleout.sh instance counts (default 1,3)
#   SRC=worktree bench/scaleout.sh    build the working tree instead of git HEAD
#   NO_DOCS=1 bench/scaleout.sh       do not touch docs/SCALING.md
#
# Needs: the build dependencies, rabbitmq-server and python3-pika
# (scripts/deps.sh --test installs them), and root: the broker runs as the
# rabbitmq user; and an fd limit of at least 10,500 (wsload holds all 10,000
# receivers of scenario conn). Everything listens on 127.0.0.1 only.
# bench/scaleout.py says what each scenario does. About 20 minutes on a
# shared 2-core machine.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-3}
SCENARIOS=${SCENARIOS:-backlog,ingest,fanout,rate,conn,drain}
INSTANCES=${INSTANCES:-1,3}
SRC=${SRC:-head}
WORK=$(mktemp -d /tmp/bench-scaleout.XXXXXX)
BUILD=$WORK/build

log() { printf '%s scaleout: %s\n' "$(date +%T)" "$*" >&2; }
. "$ROOT/bench/lib.sh"

# wsload holds every receiver (10,000 in scenario conn) in one process
need_nofile 10500

build_statusgate "$SRC" "$BUILD" -DGW_BUILD_TESTS=OFF -DGW_BUILD_BENCH=OFF
gcc -O2 -Wall -Wextra -DWSLOAD_AMQP -o "$WORK/wsload" "$ROOT/bench/wsload.c" -lpthread -lrabbitmq
gcc -O2 -Wall -o "$WORK/amqp_ackonly" "$ROOT/bench/amqp_ackonly.c" -lrabbitmq

cmd="bench/scaleout.sh"
[ "$REPS" = 3 ] || cmd="REPS=$REPS $cmd"
/usr/bin/python3 "$ROOT/bench/scaleout.py" --bin "$BUILD/statusgate" --wsload "$WORK/wsload" \
	--ackonly "$WORK/amqp_ackonly" \
	--rev "$REV" --reps "$REPS" --scenarios "$SCENARIOS" --instances "$INSTANCES" \
	--raw "$WORK/results.jsonl" --command "$cmd" ${NO_DOCS:+--no-docs}
cp "$WORK/results.jsonl" /tmp/bench-scaleout-last.jsonl
log "raw results: /tmp/bench-scaleout-last.jsonl"
rm -rf "$WORK"
