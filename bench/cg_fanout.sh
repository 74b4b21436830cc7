#!/bin/bash
# Instructions the gateway spends on a fixed fan-out workload, counted by
# callgrind: steady where timings are not (a shared, noisy machine), so two
# revisions can be compared to a fraction of a percent.
#
#   bench/cg_fanout.sh BINARY [OUT]    e.g. after bench/ab.sh: /tmp/bench-ab.*/a/build/statusgate
#
# One statusgate under valgrind --tool=callgrind, 200 receivers on one
# submission, 300 publishes (60,000 deliveries), then SIGINT; prints the
# deliveries and the program's total instructions (start-up included).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:?usage: bench/cg_fanout.sh BINARY [OUT]}
D=$(mktemp -d /tmp/bench-cg.XXXXXX)
OUT=${2:-$D/callgrind.out}
gcc -O2 -Wall -Wextra -o "$D/wsload" "$ROOT/bench/wsload.c" -lpthread
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BIN" serve --listen "127.0.0.1:$port" \
	--db "$D/db" --web-dir "$D" --log-level warn >"$D/log" 2>&1 &
P=$!
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
"$D/wsload" run --port "$port" --label cg --sub-path /ws/submissions/bench/ --pub-path /api/v1/publish \
	--receivers 200 --events 300 --size 200 --publishers 1 --window 16 --rate 0 >"$D/result.json"
kill -INT "$P"; wait "$P" || true
/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("deliveries", r["deliveries"], "missing", r["missing"], "out_of_order", r["out_of_order"])' "$D/result.json"
callgrind_annotate "$OUT" | grep -m1 "PROGRAM TOTALS"
