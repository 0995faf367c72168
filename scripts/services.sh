#!/usr/bin/env bash
# Sourced: make sure this machine's PostgreSQL and Redis are running, start them if not.
# Sets HAVE_POSTGRES / HAVE_REDIS to 1 when they answer on 127.0.0.1.
pg_up() { (echo > /dev/tcp/127.0.0.1/5432) >/dev/null 2>&1; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) >/dev/null 2>&1; }

HAVE_POSTGRES=0
HAVE_REDIS=0
if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "==> starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
fi
pg_up && HAVE_POSTGRES=1
if ! redis_up && command -v redis-server >/dev/null 2>&1; then
  echo "==> starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  for _ in $(seq 1 30); do redis_up && break; sleep 0.5; done
fi
redis_up && HAVE_REDIS=1
ensure_database() {  # ensure_database NAME: create it on the local PostgreSQL if missing
  local name="$1"
  psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$name'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE \"$name\"" >/dev/null
}
