#!/usr/bin/env bash
# Quick start: install, build, and run the gateway on its embedded default
# (SQLite in ./statusgate.db, no broker, HTTP publishing from loopback).
# Extra arguments go to `statusgate serve` (e.g. --listen 0.0.0.0:8080).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
"$here/scripts/deps.sh"
"$here/scripts/build.sh"
echo
echo "statusgate: open http://127.0.0.1:8080/submissions/demo-1 and, in another shell, run"
echo "  $here/build/statusgate demo --submission demo-1"
echo "or publish by hand:"
echo "  curl -X POST http://127.0.0.1:8080/api/v1/publish -d '{\"type\":\"status\",\"submission\":\"demo-1\",\"status\":\"Loaded\",\"notification\":\"Data loaded\"}'"
echo
exec "$here/build/statusgate" serve --db "${STATUSGATE_DB:-$here/statusgate.db}" "$@"
