#!/usr/bin/env bash
# Run-command start to first page served, with everything already installed.
# (A fresh machine adds the package downloads; see docs/benchmarks.md for that figure.)
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${BENCH_PORT:-8765}"
log=$(mktemp)
start=$(date +%s.%N)
PORT=$PORT setsid scripts/run.sh --port "$PORT" >"$log" 2>&1 &
pid=$!
trap 'kill -- -$pid 2>/dev/null || true; sleep 1; kill -9 -- -$pid 2>/dev/null || true' EXIT
for _ in $(seq 1 1800); do
  if curl -fs -o /dev/null "http://127.0.0.1:$PORT/api/docs/"; then
    end=$(date +%s.%N)
    secs=$(echo "$end - $start" | bc)
    mkdir -p benchmarks/results
    printf '{"benchmark": "startup", "seconds_to_first_page": %.1f}\n' "$secs" | tee benchmarks/results/startup.json
    exit 0
  fi
  sleep 0.1
done
echo "the page was not served within 3 minutes; log:" >&2
cat "$log" >&2
exit 1
