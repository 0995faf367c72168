#!/usr/bin/env bash
# One command: install, migrate, load demo data and run the whole system.
# Uses DATABASE_URL / REDIS_URL when set; otherwise this machine's PostgreSQL and Redis when
# they answer on 127.0.0.1; otherwise the embedded default (SQLite, in-memory layers).
# Usage: scripts/run.sh [--embedded] [--port N]
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8000}"
EMBEDDED=0
while [ $# -gt 0 ]; do
  case "$1" in
    --embedded) EMBEDDED=1 ;;
    --port) PORT="$2"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

scripts/setup.sh base
if [ "$EMBEDDED" = 0 ]; then
  # shellcheck source=scripts/services.sh
  . scripts/services.sh
  if [ -z "${DATABASE_URL:-}" ] && [ "$HAVE_POSTGRES" = 1 ]; then
    ensure_database mt5backoffice
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/mt5backoffice"
  fi
  if [ -z "${REDIS_URL:-}" ] && [ "$HAVE_REDIS" = 1 ]; then
    export REDIS_URL="redis://127.0.0.1:6379/0"
  fi
fi
export PORT WEB_PORT="$PORT"  # the processes of Procfile.dev share WEB_PORT

# The local demo runs with DEBUG on, and with a secret key and an encryption key made for this machine and kept
# in var/ (never committed): the development values in config/settings.py are public. Variables already set win.
export DEBUG="${DEBUG:-true}"
SECRETS=var/local-secrets.env
if [ ! -f "$SECRETS" ]; then
  mkdir -p var
  (umask 077 && .venv/bin/python -c '
import secrets
from cryptography.fernet import Fernet
print("SECRET_KEY=" + secrets.token_urlsafe(50))
print("FIELD_ENCRYPTION_KEYS=" + Fernet.generate_key().decode())' > "$SECRETS.tmp" && mv "$SECRETS.tmp" "$SECRETS")
  echo "==> made this machine's local secrets in $SECRETS"
  NEW_SECRETS=1
fi
# Local billing events (docs/billing.md): a webhook secret of this machine's own, for local mode only (start-up
# refuses it next to a Stripe key); files made by earlier runs get it added once.
if ! grep -q '^BILLING_LOCAL_WEBHOOK_SECRET=' "$SECRETS"; then
  (umask 077 && .venv/bin/python -c 'import secrets; print("BILLING_LOCAL_WEBHOOK_SECRET=whsec_local_" + secrets.token_hex(24))' >> "$SECRETS")
fi
while read -r line; do
  name="${line%%=*}"  # split at the first "=" only: Fernet keys end with "="
  if [ "$name" = BILLING_LOCAL_WEBHOOK_SECRET ] && [ -n "${STRIPE_TEST_SECRET_KEY:-}${STRIPE_LIVE_SECRET_KEY:-}" ]; then continue; fi
  if [ -n "$name" ] && [ -z "${!name:-}" ]; then export "$line"; fi
done < "$SECRETS"
if [ "${NEW_SECRETS:-0}" = 1 ]; then
  # Demo data stored by an earlier run was encrypted under the published development key: keep it readable
  # for this run, and re-encrypt it under the new key once the database is up to date (below).
  DEV_FERNET=$(env -u FIELD_ENCRYPTION_KEYS DEBUG=true .venv/bin/python -c 'import config.settings as s; print(s._DEV_FERNET)')
  export FIELD_ENCRYPTION_KEYS="$FIELD_ENCRYPTION_KEYS,$DEV_FERNET"
fi
echo "==> database: ${DATABASE_URL:-embedded SQLite (var/db.sqlite3)}"
echo "==> redis:    ${REDIS_URL:-none (embedded: local-memory cache, in-memory channel layer, filesystem broker)}"

M=".venv/bin/python manage.py"
# migrate, periodic jobs, seed_demo, seed_copy_demo, seed_bonus_demo (idempotent), in one process
$M prepare_demo --logins-file var/demo-logins.txt
if [ "${NEW_SECRETS:-0}" = 1 ]; then
  $M rotate_secrets >/dev/null || echo "warning: some stored MT5 passwords could not be re-encrypted (see above)" >&2
fi

# No Stripe key is made up here: any key ends billing's local mode (docs/billing.md, "Signed events on this machine").
case "$(echo "${STRIPE_LIVE_MODE:-false}" | tr '[:upper:]' '[:lower:]')" in
  true|1|yes|on) STRIPE_KEY="${STRIPE_LIVE_SECRET_KEY:-}" ;;
  *) STRIPE_KEY="${STRIPE_TEST_SECRET_KEY:-}" ;;
esac
BILLING_MODE="local mode (no Stripe key); send a signed subscription event:
    .venv/bin/python manage.py billing_send_event subscription.updated --email alice@demo.local --plan basic --url http://127.0.0.1:${PORT}/api/webhooks/stripe"
if [ -n "$STRIPE_KEY" ]; then BILLING_MODE="Stripe"; fi

cat <<TXT

  MT5 back office is starting on  http://127.0.0.1:${PORT}/
    admin:        http://127.0.0.1:${PORT}/admin/
    API docs:     http://127.0.0.1:${PORT}/api/docs/
  Demo logins (password for all: demo-pass-123):
$(cat var/demo-logins.txt)

  Copy-trading demo: Bob's master 5200001 trades BTCUSD every ~20 s (run_demo_trader); reference EAs
  beat for 5200001, 5200002 and 5100003, and the two slaves copy it live (log in as bob or alice).
  Bonus demo: three campaigns in the admin (log in as admin or campaigns); the monitor runs every 0.3 s.
  Billing: ${BILLING_MODE}
  (signed events on this machine: docs/billing.md).

  A process that exits is restarted and the others go on (docs/reliability.md). Ctrl-C stops everything.
TXT
exec .venv/bin/python scripts/supervise.py Procfile.dev
