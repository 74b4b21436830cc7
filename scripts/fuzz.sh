#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang into build-fuzz and
# runs each for SECONDS (first argument, default 60) on a scratch copy of its
# seed corpus, so the committed corpus never grows. Prints the executions of
# each target and a result line; exits non-zero on any crash, leak, timeout,
# out-of-memory or sanitizer report, leaving the input that caused it in
# build-fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS]          all targets
#   FUZZ_TARGETS="publish token" scripts/fuzz.sh 30
#   FUZZ_RUNS=10000000 scripts/fuzz.sh  a number of executions instead of a time
#
# Replay one saved input:  build-fuzz/fuzz_<target> path/to/input
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-60}"
dir="${FUZZ_BUILD_DIR:-$here/build-fuzz}"
command -v clang >/dev/null || { echo "fuzz: clang is missing (scripts/deps.sh --test installs it)" >&2; exit 1; }

cmake -S "$here" -B "$dir" -DCMAKE_C_COMPILER=clang -DGW_FUZZ=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j"${JOBS:-$(nproc)}" --target fuzz >/dev/null

targets="${FUZZ_TARGETS:-}"
if [ -z "$targets" ]; then
  for exe in "$dir"/fuzz_*; do
    [ -x "$exe" ] && targets="$targets ${exe##*/fuzz_}"
  done
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ -n "${FUZZ_RUNS:-}" ]; then
  limit=(-runs="$FUZZ_RUNS")
  what="$FUZZ_RUNS executions"
else
  limit=(-max_total_time="$secs")
  what="${secs} s"
fi
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

failed=0 total=0 n=0
echo "== libFuzzer: each target for $what =="
for t in $targets; do
  exe="$dir/fuzz_$t"
  [ -x "$exe" ] || { echo "fuzz_$t: no such target" >&2; failed=$((failed + 1)); continue; }
  mkdir -p "$work/$t" "$dir/artifacts/$t"
  cp -r "$here/tests/fuzz/corpus/$t/." "$work/$t/" 2>/dev/null || true
  log="$dir/artifacts/$t.log"
  start=$(date +%s)
  rc=0
  "$exe" "${limit[@]}" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
         -dict="$here/tests/fuzz/gw.dict" -artifact_prefix="$dir/artifacts/$t/" \
         "$work/$t" >"$log" 2>&1 || rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  execs=${execs:-0}
  # a sanitizer report that did not stop the run counts as a failure too
  if [ $rc -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|invariant failed' "$log"; then
    failed=$((failed + 1))
    echo "fuzz_$t: FAILED after $execs executions in ${took} s (exit $rc); log $log, input in $dir/artifacts/$t/"
    grep -E 'ERROR:|runtime error:|invariant failed|SUMMARY' "$log" | head -5 | sed 's/^/  /'
  else
    echo "fuzz_$t: $execs executions in ${took} s, 0 crashes, 0 leaks, 0 reports"
  fi
  total=$((total + execs))
  n=$((n + 1))
done
echo "fuzz: $n targets, $total executions, $failed failed"
[ $failed -eq 0 ]
