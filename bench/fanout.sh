#!/bin/bash
# Fan-out benchmark (SPEC section 9): statusgate against nginx + nchan, in the
# same run, on loopback, with the same load tool (bench/wsload.c), plus the
# "syscall floor" (the CPU cost of only writing the same frames to N sockets).
#
#   bench/fanout.sh                 build, run every scenario, print a summary,
#                                   rewrite the "Fan-out" section of docs/BENCHMARKS.md
#   REPS=3 bench/fanout.sh          fewer repetitions (default 5)
#   SCENARIOS="a b" bench/fanout.sh only some scenarios (a to e, see below)
#   SRC=worktree bench/fanout.sh    build the working tree instead of git HEAD
#   NO_DOCS=1 bench/fanout.sh       do not touch docs/BENCHMARKS.md
#
# Needs: gcc, cmake, the build dependencies of statusgate, and nginx with the
# nchan module (installed here with apt-get when missing; these are bench
# dependencies only, not test dependencies). Runs as root on this machine for
# apt-get only; both servers listen on 127.0.0.1 only.
#
# statusgate and nchan run alternately (the order flips every repetition), each
# in a fresh temporary directory (its own SQLite file, its own nginx.conf), and
# the summary reports medians. Performance is measured here, never asserted in
# tests.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-5}
SCENARIOS=${SCENARIOS:-"a b c d e"}
SRC=${SRC:-head}
WORK=$(mktemp -d /tmp/bench-fanout.XXXXXX)
BUILD=$WORK/build
RESULTS=$WORK/results.jsonl
PY=/usr/bin/python3
SERVER_PID=
NGINX_PID=

cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
	[ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
	wait 2>/dev/null || true
}
trap cleanup EXIT

log() { printf '%s fanout: %s\n' "$(date +%T)" "$*" >&2; }
. "$ROOT/bench/lib.sh"

# ---- scenarios: name receivers idle events publishers window rate note ----
# (idle: extra connections watching another channel, which get nothing)
scenario() {
	case $1 in
	a) echo "1000 0 400 1 64 0 1000 receivers, as fast as possible" ;;
	b) echo "100 0 4000 4 64 0 100 receivers, as fast as possible (4 publishers)" ;;
	c) echo "10000 0 40 1 64 0 10000 receivers, as fast as possible" ;;
	d) echo "1000 0 200 1 0 50 1000 receivers at 50 events/s (latency)" ;;
	e) echo "100 9900 1000 4 64 0 100 receivers beside 9900 idle connections" ;;
	*) echo "unknown scenario $1" >&2; exit 2 ;;
	esac
}
SIZE=200   # notification bytes; the frame on the wire is 275 bytes for both servers

# ---- setup ----
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
log "work dir $WORK, fd limit $NOFILE"

if [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ] || ! command -v nginx >/dev/null; then
	log "installing nginx + nchan (bench only)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		nginx libnginx-mod-nchan >"$WORK/apt.log" 2>&1 ||
		{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends nginx libnginx-mod-nchan >"$WORK/apt.log" 2>&1; }
fi

build_statusgate "$SRC" "$BUILD"
gcc -O2 -Wall -Wextra -o "$WORK/wsload" "$ROOT/bench/wsload.c" -lpthread
WSLOAD=$WORK/wsload

# run_statusgate LABEL wsload-args...
run_statusgate() {
	local label=$1 d port; shift
	d=$(mktemp -d "$WORK/sg.XXXX"); port=$(free_port)
	"$BUILD/statusgate" serve --listen "127.0.0.1:$port" --db "$d/db" --web-dir "$d" --log-level warn \
		--max-connections 20000 --max-connections-per-ip 20000 >"$d/log" 2>&1 &
	SERVER_PID=$!
	wait_port "$port"
	"$WSLOAD" run --port "$port" --server-pid "$SERVER_PID" --label "$label" \
		--sub-path /ws/submissions/bench/ --pub-path /api/v1/publish "$@" >>"$RESULTS" ||
		log "statusgate run $label reported a problem (see $RESULTS and $d/log)"
	kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}

# run_nchan LABEL WORKERS wsload-args...
run_nchan() {
	local label=$1 workers=$2 d port worker; shift 2
	d=$(mktemp -d "$WORK/ng.XXXX"); port=$(free_port)
	cat >"$d/nginx.conf" <<-EOF
	load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
	worker_processes $workers;
	worker_rlimit_nofile $NOFILE;
	daemon off;
	pid $d/nginx.pid;
	error_log $d/error.log warn;
	events { worker_connections $NOFILE; }
	http {
	  access_log off;
	  keepalive_requests 1000000;
	  client_body_temp_path $d/body;
	  proxy_temp_path $d/proxy;
	  fastcgi_temp_path $d/fastcgi;
	  uwsgi_temp_path $d/uwsgi;
	  scgi_temp_path $d/scgi;
	  server {
	    listen 127.0.0.1:$port;
	    location ~ ^/sub/(\w+)\$ { nchan_subscriber websocket; nchan_channel_id \$1; }
	    location ~ ^/pub/(\w+)\$ { nchan_publisher; nchan_channel_id \$1;
	                              nchan_message_buffer_length 16; }
	  }
	}
	EOF
	nginx -c "$d/nginx.conf" -p "$d" >"$d/stdout" 2>&1 &
	NGINX_PID=$!
	wait_port "$port"
	# the master only accepts signals; measure the (first) worker
	worker=$(awk '{print $1}' "/proc/$NGINX_PID/task/$NGINX_PID/children")
	"$WSLOAD" run --port "$port" --nchan --server-pid "$worker" --label "$label" \
		--sub-path /sub/bench --pub-path /pub/bench "$@" >>"$RESULTS" ||
		log "nchan run $label reported a problem (see $RESULTS and $d/error.log)"
	kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=
}

T0=$(date +%s)
for sc in $SCENARIOS; do
	read -r N I M K W R NOTE <<<"$(scenario "$sc")"
	args=(--receivers "$N" --events "$M" --size "$SIZE" --publishers "$K" --window "$W" --rate "$R")
	[ "$I" = 0 ] || args+=(--idle "$I")
	log "scenario $sc: $NOTE, $M events of $SIZE bytes, $REPS repetitions"
	for rep in $(seq "$REPS"); do
		if [ $((rep % 2)) = 1 ]; then
			run_statusgate "$sc" "${args[@]}" --idle-path /ws/submissions/other/
			run_nchan "$sc" 1 "${args[@]}" --idle-path /sub/other
		else
			run_nchan "$sc" 1 "${args[@]}" --idle-path /sub/other
			run_statusgate "$sc" "${args[@]}" --idle-path /ws/submissions/other/
		fi
	done
	if [ "$R" = 0 ] && [ "$I" = 0 ]; then
		# the floor: the same frames, one write() per receiver per event;
		# at most as many sockets as the fd limit allows (2 per receiver)
		fn=$(( N < (NOFILE - 100) / 2 ? N : (NOFILE - 100) / 2 ))
		fm=$(( N * M / fn ))
		for rep in 1 2 3; do
			"$WSLOAD" floor --receivers "$fn" --events "$fm" --size "$SIZE" --label "$sc" >>"$RESULTS"
		done
	fi
done
if [ -n "${NCHAN_AUTO-1}" ] && [[ " $SCENARIOS " == *" a "* ]]; then
	read -r N I M K W R NOTE <<<"$(scenario a)"
	log "scenario a with nchan worker_processes auto ($(nproc) workers), 3 repetitions"
	for rep in 1 2 3; do
		run_nchan a-auto auto --receivers "$N" --events "$M" --size "$SIZE" \
			--publishers "$K" --window "$W" --rate "$R"
	done
fi
log "runs took $(( $(date +%s) - T0 )) s; raw results in $RESULTS"

# ---- summary ----
$PY "$ROOT/bench/fanout_report.py" "$RESULTS" --rev "$REV" --reps "$REPS" \
	${NO_DOCS:+--no-docs} --docs "$ROOT/docs/BENCHMARKS.md"
cp "$RESULTS" "/tmp/bench-fanout-last.jsonl"
