#!/usr/bin/env bash
# Run the benchmarks against this machine's PostgreSQL and Redis (a dedicated database).
# Usage: benchmarks/run.sh [sync|startup ...]   (default: all). Results: benchmarks/results/*.json
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
# shellcheck source=scripts/services.sh
. scripts/services.sh
[ "$HAVE_POSTGRES" = 1 ] && [ "$HAVE_REDIS" = 1 ] || { echo "benchmarks need PostgreSQL and Redis on 127.0.0.1" >&2; exit 1; }
ensure_database mt5bo_bench
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/mt5bo_bench"
export REDIS_URL="redis://127.0.0.1:6379/13"
export LOG_LEVEL=WARNING
mkdir -p benchmarks/results
.venv/bin/python manage.py migrate --noinput -v 0
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(sync startup)
for name in "${names[@]}"; do
  case "$name" in
    sync) .venv/bin/python benchmarks/sync_throughput.py ;;
    startup) bash benchmarks/startup.sh ;;
    *) echo "unknown benchmark $name" >&2; exit 2 ;;
  esac
done
