#!/usr/bin/env bash
# Install what the project needs into .venv (idempotent; fast when nothing changed).
# Usage: scripts/setup.sh [base|dev]
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-dev}"
PY="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
stamp=".venv/.installed-$profile"
hash=$(cat requirements/*.txt | sha256sum | cut -d' ' -f1)
# dev includes base: a current dev install satisfies base too.
if [ "$profile" = base ] && [ -f .venv/.installed-dev ] && [ "$(cat .venv/.installed-dev)" = "$hash" ]; then
  stamp=.venv/.installed-dev
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$hash" ]; then
  echo "==> installing Python packages (requirements/$profile.txt)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "requirements/$profile.txt"
  echo "$hash" > "$stamp"
fi

# Front-end libraries (htmx, Chart.js + zoom) from the npm registry, served from node_modules.
if [ -f package-lock.json ]; then
  lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ ! -f node_modules/.installed-lock ] || [ "$(cat node_modules/.installed-lock)" != "$lock_hash" ]; then
    if command -v npm >/dev/null 2>&1; then
      echo "==> installing front-end packages (npm ci)"
      npm ci --no-audit --no-fund --loglevel=error
      echo "$lock_hash" > node_modules/.installed-lock
    else
      echo "npm is missing: install Node.js (apt-get install -y nodejs npm) for the web UI's charts and htmx" >&2
      exit 1
    fi
  fi
fi

# The browser tests drive Debian's chromium (Playwright's own browser download is not used).
if [ "$profile" = dev ] && [ ! -x /usr/bin/chromium ] && [ -z "${SKIP_CHROMIUM:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing chromium for the browser tests"
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: /usr/bin/chromium is missing; browser tests will be skipped (apt-get install chromium)" >&2
  fi
fi
mkdir -p var/static
