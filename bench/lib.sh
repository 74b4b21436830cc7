# Shared by the bench scripts (sourced, not run): the statusgate build from
# git (or the working tree), and the ports of the servers they start.
# Expects ROOT (the repository), WORK (a scratch directory) and log().

PY=${PY:-/usr/bin/python3}

# build_statusgate SRC BUILD [cmake args...]: statusgate (Release) in
# BUILD from SRC: "worktree" is the working tree, anything else a git
# revision ("head": HEAD), unpacked beside BUILD; sets REV
build_statusgate() {
	local src=$1 build=$2 dir; shift 2
	if [ "$src" = worktree ]; then
		REV="$(git -C "$ROOT" rev-parse --short HEAD)+worktree"
		dir=$ROOT
	else
		[ "$src" = head ] && src=HEAD
		REV=$(git -C "$ROOT" rev-parse --short "$src")
		dir=$build.src
		mkdir -p "$dir"
		git -C "$ROOT" archive "$src" | tar -x -C "$dir"
	fi
	log "building statusgate $REV (Release) in $build"
	mkdir -p "$(dirname "$build")"
	cmake -S "$dir" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >"$build.cmake.log" 2>&1
	cmake --build "$build" -j2 --target statusgate >>"$build.cmake.log" 2>&1 ||
		{ tail -30 "$build.cmake.log"; exit 1; }
}

# need_nofile N: the soft descriptor limit up to the hard one; exits when
# that is still below N
need_nofile() {
	ulimit -n "$(ulimit -Hn)"
	[ "$(ulimit -n)" -ge "$1" ] || { log "need ulimit -n >= $1 (have $(ulimit -n))"; exit 1; }
}

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# waits up to 5 s for something to listen on 127.0.0.1:PORT
wait_port() {
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on port $1" >&2
	return 1
}
