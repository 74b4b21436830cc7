#!/bin/bash
# Fan-out and connection benchmark (SPEC section 9, issue 11): statusgate
# against nginx + nchan and against the write-syscall floor, in the same run,
# on loopback, with the same load tool (bench/wsload.c), pinned: every server
# on CPU 0, the load tool on CPU 1 (taskset). Optionally the statusgate of an
# older revision too (BASE=rev), for a before/after in the same run.
#
#   bench/fanout.sh                 build, run every scenario, print a summary,
#                                   rewrite the "Fan-out" section of docs/BENCHMARKS.md
#   REPS=3 bench/fanout.sh          repetitions per server and scenario (default 3)
#   SCENARIOS="a b" bench/fanout.sh only some scenarios (a b c h d e, see below)
#   BASE=eca3d4c bench/fanout.sh    also run statusgate built from that revision
#   SRC=worktree bench/fanout.sh    build the working tree instead of git HEAD
#   NO_DOCS=1 bench/fanout.sh       do not touch docs/BENCHMARKS.md
#
# Scenarios (issue 11):
#   a  10,000 receivers on 1,000 submissions, 20,000 publishes over 4
#      keep-alive HTTP connections, 64 events in flight at most
#   b  10,000 receivers on one submission, 200 publishes (4 connections, 16 in flight)
#   c  19,000 idle connections: RSS per connection after 4 rounds of all of
#      them opening (500 handshakes at a time) and closing
#   h  handshakes/s: 10,000 clients connecting at once (3 rounds)
#   d  AMQP publish -> WebSocket receipt, 10,000 receivers on 1,000
#      submissions, at fixed rates, against RabbitMQ's Web-STOMP plugin
#      (bench/amqp_stomp.py: its own private broker)
#   e  100 receivers beside 9,900 idle connections, 1,000 publishes
# The floor (wsload floor: one thread write()s the same frame to N connected
# loopback sockets, pinned like a server) runs with a and b.
#
# Needs: gcc, cmake, the build dependencies of statusgate, nginx with the
# nchan module (installed here with apt-get when missing; bench dependencies
# only) and, for d, rabbitmq-server with its plugins (Debian ships
# rabbitmq_web_stomp in the package). Both servers listen on 127.0.0.1 only.
# Performance is measured here, never asserted in tests.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-3}
SCENARIOS=${SCENARIOS:-"a b c h d e"}
SRC=${SRC:-head}
BASE=${BASE:-}
WORK=$(mktemp -d /tmp/bench-fanout.XXXXXX)
RESULTS=$WORK/results.jsonl
PY=/usr/bin/python3
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
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

SIZE=200   # notification bytes; the frame on the wire is 275 bytes for both servers

# ---- setup ----
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
log "work dir $WORK, fd limit $NOFILE, servers on CPU $SERVER_CPU, load on CPU $LOAD_CPU"

if [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ] || ! command -v nginx >/dev/null; then
	log "installing nginx + nchan (bench only)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		nginx libnginx-mod-nchan >"$WORK/apt.log" 2>&1 ||
		{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends nginx libnginx-mod-nchan >"$WORK/apt.log" 2>&1; }
fi

build_statusgate "$SRC" "$WORK/new/build"
SERVERS="statusgate nchan"
if [ -n "$BASE" ]; then
	NEW_REV=$REV
	build_statusgate "$BASE" "$WORK/base/build"
	BASE_REV=$REV REV=$NEW_REV
	SERVERS="statusgate statusgate-base nchan"
fi
WSLOAD=$WORK/wsload
if gcc -O2 -Wall -Wextra -DWSLOAD_AMQP -o "$WSLOAD" "$ROOT/bench/wsload.c" -lpthread -lrabbitmq 2>/dev/null; then
	:
else
	gcc -O2 -Wall -Wextra -o "$WSLOAD" "$ROOT/bench/wsload.c" -lpthread
fi
LOAD=(taskset -c "$LOAD_CPU" "$WSLOAD")

# run_statusgate WHICH(new|base) LABEL MODE wsload-args...
run_statusgate() {
	local which=$1 label=$2 mode=$3 d port name=statusgate; shift 3
	[ "$which" = base ] && name=statusgate-base
	d=$(mktemp -d "$WORK/sg.XXXX"); port=$(free_port)
	taskset -c "$SERVER_CPU" "$WORK/$which/build/statusgate" serve --listen "127.0.0.1:$port" \
		--db "$d/db" --web-dir "$d" --log-level warn \
		--max-connections 20000 --max-connections-per-ip 20000 >"$d/log" 2>&1 &
	SERVER_PID=$!
	wait_port "$port"
	"${LOAD[@]}" "$mode" --port "$port" --server-pid "$SERVER_PID" --label "$label" \
		--sub-path '/ws/submissions/%s/' --pub-path /api/v1/publish "$@" |
		sed "s/\"server\":\"statusgate\"/\"server\":\"$name\"/" >>"$RESULTS" ||
		log "$name run $label reported a problem (see $RESULTS and $d/log)"
	kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}

# run_nchan LABEL MODE wsload-args...
run_nchan() {
	local label=$1 mode=$2 d port worker; shift 2
	d=$(mktemp -d "$WORK/ng.XXXX"); port=$(free_port)
	cat >"$d/nginx.conf" <<-EOF
	load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
	worker_processes 1;
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
	    listen 127.0.0.1:$port backlog=4096;
	    location ~ ^/sub/(\w+)\$ { nchan_subscriber websocket; nchan_channel_id \$1; }
	    location ~ ^/pub/(\w+)\$ { nchan_publisher; nchan_channel_id \$1;
	                              nchan_message_buffer_length 16; }
	  }
	}
	EOF
	taskset -c "$SERVER_CPU" nginx -c "$d/nginx.conf" -p "$d" >"$d/stdout" 2>&1 &
	NGINX_PID=$!
	wait_port "$port"
	# the master only accepts signals; measure the (one) worker
	worker=$(awk '{print $1}' "/proc/$NGINX_PID/task/$NGINX_PID/children")
	"${LOAD[@]}" "$mode" --port "$port" --nchan --server-pid "$worker" --label "$label" \
		--sub-path '/sub/%s' --pub-path '/pub/%s' "$@" >>"$RESULTS" ||
		log "nchan run $label reported a problem (see $RESULTS and $d/error.log)"
	kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=
}

run_server() {   # run_server SERVER LABEL MODE args...
	local srv=$1; shift
	case $srv in
	statusgate) run_statusgate new "$@" ;;
	statusgate-base) run_statusgate base "$@" ;;
	nchan) run_nchan "$@" ;;
	esac
}

# scenario -> "MODE wsload-args" (idle paths are added per server)
scenario() {
	case $1 in
	a) echo "run --receivers 10000 --channels 1000 --events 20000 --publishers 4 --window 64 --size $SIZE --rate 0" ;;
	b) echo "run --receivers 10000 --events 200 --publishers 4 --window 16 --size $SIZE --rate 0" ;;
	c) echo "conns --receivers 19000 --rounds 4 --inflight 500" ;;
	h) echo "conns --receivers 10000 --rounds 3 --inflight 0" ;;
	e) echo "run --receivers 100 --idle 9900 --events 1000 --publishers 4 --window 64 --size $SIZE --rate 0" ;;
	*) echo "unknown scenario $1" >&2; exit 2 ;;
	esac
}

T0=$(date +%s)
for sc in $SCENARIOS; do
	if [ "$sc" = d ]; then
		log "scenario d: AMQP -> WebSocket against Web-STOMP ($REPS repetitions)"
		$PY "$ROOT/bench/amqp_stomp.py" --bin "$WORK/new/build/statusgate" --wsload "$WSLOAD" \
			--reps "$REPS" --server-cpu "$SERVER_CPU" --load-cpu "$LOAD_CPU" \
			${BASE:+--base-bin "$WORK/base/build/statusgate"} >>"$RESULTS" ||
			log "scenario d reported a problem"
		continue
	fi
	read -r MODE ARGS <<<"$(scenario "$sc")"
	log "scenario $sc: $MODE $ARGS, $REPS repetitions"
	for rep in $(seq "$REPS"); do
		# the order of the servers rotates every repetition
		set -- $SERVERS
		for _ in $(seq $(( (rep - 1) % $# ))); do set -- "${@:2}" "$1"; done
		for srv in "$@"; do
			idle=()
			if [[ " $ARGS " == *" --idle "* ]]; then
				[ "$srv" = nchan ] && idle=(--idle-path /sub/other) ||
					idle=(--idle-path /ws/submissions/other/)
			fi
			# shellcheck disable=SC2086
			run_server "$srv" "$sc" "$MODE" $ARGS "${idle[@]}"
		done
	done
	if [ "$sc" = a ] || [ "$sc" = b ]; then
		# the floor: as many sockets as the fd limit allows (2 per receiver),
		# the same number of writes as the scenario's deliveries
		read -r N M C <<<"$(echo "$ARGS" | sed -E 's/.*--receivers ([0-9]+).*--events ([0-9]+).*/\1 \2/') $(echo "$ARGS" | grep -oE -- '--channels [0-9]+' | awk '{print $2}')"
		C=${C:-1}
		fn=$(( N < (NOFILE - 100) / 2 ? N : (NOFILE - 100) / 2 ))
		fm=$(( N / C * M / fn ))
		for rep in $(seq "$REPS"); do
			"$WSLOAD" floor --receivers "$fn" --events "$fm" --size "$SIZE" --label "$sc" \
				--pin "$SERVER_CPU,$LOAD_CPU" >>"$RESULTS"
		done
	fi
done
log "runs took $(( $(date +%s) - T0 )) s; raw results in $RESULTS"

# ---- summary ----
$PY "$ROOT/bench/fanout_report.py" "$RESULTS" --rev "$REV" --reps "$REPS" \
	${BASE:+--base-rev "$BASE_REV"} ${NO_DOCS:+--no-docs} --docs "$ROOT/docs/BENCHMARKS.md"
cp "$RESULTS" "/tmp/bench-fanout-last.jsonl"
