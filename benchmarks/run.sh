#!/usr/bin/env bash
# Run the benchmarks against this machine's PostgreSQL and Redis (each benchmark uses its own database).
# Usage: benchmarks/run.sh [NAME ...]   (default: all). Results: stdout and benchmarks/results/*.json;
# the figures of record are in docs/benchmarks.md. Each run's figures, commit and load average are appended to
# benchmarks/history.jsonl (benchmarks/history.py; BENCH_HISTORY=0 leaves it out, for trial runs).
# Names: sync startup analytics dashboard bonus_monitor copy_latency ea_heartbeat ea_beat_cpu ea_to_ea ws_fanout
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
# shellcheck source=scripts/services.sh
. scripts/services.sh
[ "$HAVE_POSTGRES" = 1 ] && [ "$HAVE_REDIS" = 1 ] || { echo "benchmarks need PostgreSQL and Redis on 127.0.0.1" >&2; exit 1; }
export LOG_LEVEL=WARNING
# In-process benchmarks run on the development defaults, as before DEBUG became off by default; the served ones
# (dashboard, ea_heartbeat) set DEBUG off with keys of their own.
export DEBUG="${DEBUG:-true}"
# dashboard signs its session cookie in-process and serves it with DEBUG off, where the development key is refused.
export SECRET_KEY="${SECRET_KEY:-$(head -c 48 /dev/urandom | base64 | tr -d '\n')}"
# The heartbeat benchmark drives the server with wrk (Debian's package), a C load generator: on 2 shared cores a
# Python load generator would take a core of the server's.
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing wrk for the heartbeat benchmark"
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  else
    echo "warning: wrk is missing (apt-get install wrk); ea_heartbeat falls back to BENCH_LOADGEN=python" >&2
    export BENCH_LOADGEN=python
  fi
fi
mkdir -p benchmarks/results
PY=.venv/bin/python
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(sync startup analytics dashboard bonus_monitor copy_latency ea_heartbeat ea_to_ea ws_fanout)
for name in "${names[@]}"; do
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  started=$(date +%s)
  echo "==> $name (load average: $load_before)"
  { case "$name" in
    sync|startup)
      ensure_database mt5bo_bench
      DATABASE_URL="postgres://postgres@127.0.0.1:5432/mt5bo_bench" $PY manage.py migrate --noinput -v 0
      if [ "$name" = sync ]; then
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/mt5bo_bench" REDIS_URL="redis://127.0.0.1:6379/13" \
          $PY benchmarks/sync_throughput.py
      else
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/mt5bo_bench" REDIS_URL="redis://127.0.0.1:6379/13" \
          bash benchmarks/startup.sh
      fi ;;
    analytics) $PY benchmarks/analytics_stats.py ;;
    dashboard) $PY benchmarks/dashboard_summary.py ;;
    bonus_monitor) $PY benchmarks/bonus_monitor.py ;;
    copy_latency) $PY benchmarks/copy_latency.py ;;
    ea_heartbeat) $PY benchmarks/ea_heartbeat.py ;;
    ea_beat_cpu) $PY benchmarks/ea_beat_cpu.py ;;
    ea_to_ea) $PY benchmarks/ea_to_ea.py ;;
    ws_fanout) $PY benchmarks/ws_fanout.py ;;
    *) echo "unknown benchmark $name" >&2; exit 2 ;;
  esac; } | tee "benchmarks/results/$name.out"
  if [ "${BENCH_HISTORY:-1}" != 0 ]; then
    $PY benchmarks/history.py --record "$name" --since "$started" --load-before "$load_before" \
      --output "benchmarks/results/$name.out" || echo "warning: $name not added to benchmarks/history.jsonl" >&2
  fi
done
