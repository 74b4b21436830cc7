#!/bin/bash
# A/B fan-out comparison of two statusgate revisions in the same run: both are
# built (Release) from git, then run alternately (the order flips every
# repetition) under the same load tool (bench/wsload.c), and the medians and
# the B/A ratios are printed. For changes that must not regress (a refactor)
# or must improve (a fan-out optimisation); bench/fanout.sh compares against
# nginx + nchan instead.
#
#   bench/ab.sh REV_A REV_B              scenarios a and b, 5 repetitions each
#   REPS=3 SCENARIOS="a" bench/ab.sh ... (scenarios as in bench/fanout.sh)
#
# Performance is measured here, never asserted in tests.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
A=${1:?usage: bench/ab.sh REV_A REV_B}
B=${2:?usage: bench/ab.sh REV_A REV_B}
REPS=${REPS:-5}
SCENARIOS=${SCENARIOS:-"a b"}
WORK=$(mktemp -d /tmp/bench-ab.XXXXXX)
RESULTS=$WORK/results.jsonl
PY=/usr/bin/python3
SIZE=200
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true' EXIT

log() { printf '%s ab: %s\n' "$(date +%T)" "$*" >&2; }
. "$ROOT/bench/lib.sh"

scenario() {
	case $1 in
	a) echo "1000 400 1 64" ;;    # receivers events publishers window
	b) echo "100 4000 4 64" ;;
	c) echo "10000 40 1 64" ;;
	*) echo "unknown scenario $1" >&2; exit 2 ;;
	esac
}

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
RA=$(git -C "$ROOT" rev-parse --short "$A"); RB=$(git -C "$ROOT" rev-parse --short "$B")
log "building A=$RA and B=$RB in $WORK"
build_statusgate "$A" "$WORK/a/build"
build_statusgate "$B" "$WORK/b/build"
gcc -O2 -Wall -Wextra -o "$WORK/wsload" "$ROOT/bench/wsload.c" -lpthread

run() {   # run WHICH(a|b) SCENARIO wsload-args...
	local which=$1 sc=$2 d port; shift 2
	d=$(mktemp -d "$WORK/run.XXXX"); port=$(free_port)
	"$WORK/$which/build/statusgate" serve --listen "127.0.0.1:$port" --db "$d/db" --web-dir "$d" \
		--log-level warn --max-connections 20000 --max-connections-per-ip 20000 >"$d/log" 2>&1 &
	SERVER_PID=$!
	wait_port "$port"
	"$WORK/wsload" run --port "$port" --server-pid "$SERVER_PID" --label "$which:$sc" \
		--sub-path /ws/submissions/bench/ --pub-path /api/v1/publish "$@" >>"$RESULTS" ||
		log "run $which $sc reported a problem (see $RESULTS and $d/log)"
	kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}

for sc in $SCENARIOS; do
	read -r N M K W <<<"$(scenario "$sc")"
	args=(--receivers "$N" --events "$M" --size "$SIZE" --publishers "$K" --window "$W" --rate 0)
	log "scenario $sc: $N receivers, $M events, $REPS repetitions each"
	for rep in $(seq "$REPS"); do
		if [ $((rep % 2)) = 1 ]; then run a "$sc" "${args[@]}"; run b "$sc" "${args[@]}"
		else run b "$sc" "${args[@]}"; run a "$sc" "${args[@]}"; fi
	done
done

$PY - "$RESULTS" "$RA" "$RB" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ra, rb = sys.argv[2], sys.argv[3]
keys = [("deliveries_per_s", "deliveries/s"),
        ("server_cpu_ns_per_delivery", "server CPU ns/delivery"),
        ("server_main_cpu_ns_per_delivery", "service thread ns/delivery")]
print("| scenario | figure | A %s | B %s | B/A |" % (ra, rb))
print("|---|---|---|---|---|")
for sc in sorted({r["label"].split(":")[1] for r in rows}):
    for k, name in keys:
        med = {}
        for w in "ab":
            v = [r[k] for r in rows if r["label"] == "%s:%s" % (w, sc) and k in r]
            med[w] = statistics.median(v) if v else float("nan")
        print("| %s | %s | %.0f | %.0f | %.2f |" % (sc, name, med["a"], med["b"], med["b"] / med["a"]))
bad = [r for r in rows if r.get("missing") or r.get("out_of_order") or r.get("bad_frames")]
print("runs with missing, reordered or bad frames: %d of %d" % (len(bad), len(rows)))
PYEOF
log "raw results in $RESULTS"
