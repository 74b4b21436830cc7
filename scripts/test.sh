#!/usr/bin/env bash
# The whole test suite: installs what it needs (RabbitMQ, Chromium, clients,
# clang), builds with -Werror, runs every ctest test (unit, integration,
# broker, browser, image), then builds again with ASan+UBSan and runs the
# tests there too, less the image test (the image is built from the sources,
# not from a build tree, so tests.cmake leaves it out of the sanitizer
# build), and last runs every libFuzzer target for FUZZ_SECONDS each
# (default 40: nine targets, six minutes).
# Tests that need RabbitMQ start their own broker; none of them skip.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
"$here/scripts/deps.sh" --test

status=0
BUILD_DIR="$here/build" "$here/scripts/build.sh"
(cd "$here/build" && ctest --output-on-failure --timeout 900 ${CTEST_ARGS:-}) || status=1

if [ "${SKIP_ASAN:-0}" != 1 ]; then
  echo "== AddressSanitizer + UndefinedBehaviorSanitizer build =="
  BUILD_DIR="$here/build-asan" GW_SANITIZE=1 BUILD_TYPE=Debug "$here/scripts/build.sh"
  # the three longest tests exercise a broker cluster's failover, a minute of
  # broker flapping and 20,000 connections: the normal pass runs them; under
  # the sanitizers they would add about ten minutes for little more coverage
  (cd "$here/build-asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure --timeout 900 \
       -E "${ASAN_EXCLUDE-^(broker_cluster_test|broker_faults_flap_test|hostile_test)\$}" \
       ${CTEST_ARGS:-}) || status=1
fi

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  "$here/scripts/fuzz.sh" "${FUZZ_SECONDS:-40}" || status=1
fi
exit $status
