#!/usr/bin/env bash
# One command: install everything and run every check and test against PostgreSQL and Redis.
# Uses DATABASE_URL / REDIS_URL when set, else this machine's PostgreSQL and Redis (started if down).
# Extra arguments go to pytest (e.g. scripts/test.sh -k sync).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
# shellcheck source=scripts/services.sh
. scripts/services.sh
if [ -z "${DATABASE_URL:-}" ]; then
  [ "$HAVE_POSTGRES" = 1 ] || { echo "PostgreSQL is not reachable on 127.0.0.1:5432 and DATABASE_URL is unset" >&2; exit 1; }
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/mt5bo"
fi
if [ -z "${REDIS_URL:-}" ]; then
  [ "$HAVE_REDIS" = 1 ] || { echo "Redis is not reachable on 127.0.0.1:6379 and REDIS_URL is unset" >&2; exit 1; }
  export REDIS_URL="redis://127.0.0.1:6379/15"
fi
echo "==> database: $DATABASE_URL"
echo "==> redis:    $REDIS_URL"
PY=.venv/bin/python
# The checks and tests run on the development defaults (DEBUG defaults to off, which refuses them); the
# production check below sets DEBUG=false with generated secrets.
export DEBUG="${DEBUG:-true}"

echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> import-linter (layers: docs/architecture.md)"
.venv/bin/lint-imports --no-cache
echo "==> mypy (the domain packages: [tool.mypy] in pyproject.toml)"
.venv/bin/mypy
echo "==> manage.py check"
$PY manage.py check --fail-level WARNING -v 0
echo "==> makemigrations --check"
$PY manage.py makemigrations --check --dry-run -v 1
echo "==> manage.py check --deploy (production settings)"
DEBUG=false SECRET_KEY="$(head -c 48 /dev/urandom | base64 | tr -d '\n')" ALLOWED_HOSTS=backoffice.example.com \
  FIELD_ENCRYPTION_KEYS="$($PY -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
  $PY manage.py check --deploy --fail-level WARNING -v 0

echo "==> pytest"
set +e
# loadgroup: tests marked xdist_group run on one worker (a fault-suite module shares one set of processes).
$PY -m pytest -p no:cacheprovider -n "${PYTEST_WORKERS:-2}" --dist loadgroup "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
