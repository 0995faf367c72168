"""Send one signed local billing event to this machine's back office (local mode: no Stripe involved).

    manage.py billing_send_event subscription.updated --email alice@demo.local --plan basic [--status active]
        [--url http://127.0.0.1:8000/api/webhooks/stripe] [--event-id evt_…] [--subscription sub_…]

The event has Stripe's shape and is signed with BILLING_LOCAL_WEBHOOK_SECRET the way Stripe signs
(``Stripe-Signature: t=…,v1=…``). Only loopback URLs are accepted: the secret never leaves this machine.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

EVENT_TYPES = ("subscription.created", "subscription.updated", "subscription.deleted")
SECRETS_FILE = "var/local-secrets.env"  # where scripts/run.sh keeps this machine's local secrets
SECRET_NAME = "BILLING_LOCAL_WEBHOOK_SECRET"


def sign(payload: str, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header: HMAC-SHA256 of "{t}.{payload}" with the secret."""
    signature = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def local_id(prefix: str, who: str) -> str:
    """A stable id per person, so created, updated and deleted name the same subscription."""
    return f"{prefix}_local_{hashlib.sha256(who.lower().encode()).hexdigest()[:16]}"


def build_event(
    event_type: str,
    *,
    email: str = "",
    user_id: str = "",
    plan: str = "",
    status: str = "active",
    interval: str = "month",
    subscription_id: str = "",
    event_id: str = "",
    now: int | None = None,
) -> dict:
    """A Stripe-shaped customer.subscription.* event naming the person and the plan (price lookup_key)."""
    now = int(time.time()) if now is None else now
    who = email or user_id
    full_type = event_type if event_type.startswith("customer.") else f"customer.{event_type}"
    metadata = {"plan": plan}
    if user_id:
        metadata["user_id"] = user_id
    subscription = {
        "id": subscription_id or local_id("sub", who),
        "object": "subscription",
        "customer": {"id": local_id("cus", who), "object": "customer", "email": email or None},
        "status": "canceled" if full_type == "customer.subscription.deleted" else status,
        "created": now,
        "cancel_at_period_end": False,
        "trial_end": now + 14 * 86400 if status == "trialing" else None,
        "metadata": metadata,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": local_id("si", who),
                    "object": "subscription_item",
                    "current_period_end": now + (365 if interval == "year" else 30) * 86400,
                    "price": {
                        "id": f"price_local_{plan}_{interval}",
                        "object": "price",
                        "lookup_key": plan,
                        "recurring": {"interval": interval},
                    },
                }
            ],
        },
    }
    return {
        "id": event_id or f"evt_local_{secrets.token_hex(12)}",
        "object": "event",
        "type": full_type,
        "created": now,
        "livemode": False,
        "data": {"object": subscription},
    }


def is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def default_url() -> str:
    """The webhook path on SITE_URL when that is this machine (scripts/run.sh's default), else 127.0.0.1:8000."""
    site = settings.SITE_URL.rstrip("/")
    return f"{site if is_loopback(site) else 'http://127.0.0.1:8000'}/api/webhooks/stripe"


def local_secret(base_dir) -> str:
    """The setting, else the line scripts/run.sh wrote into var/local-secrets.env."""
    if settings.BILLING_LOCAL_WEBHOOK_SECRET:
        return settings.BILLING_LOCAL_WEBHOOK_SECRET
    path = Path(base_dir) / SECRETS_FILE
    if path.is_file():
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            if name.strip() == SECRET_NAME and value.strip():
                return value.strip()
    return ""


class Command(BaseCommand):
    help = "Sign a Stripe-shaped subscription event with the local billing secret and POST it to this machine."

    def add_arguments(self, parser):
        parser.add_argument("event", choices=EVENT_TYPES + tuple(f"customer.{t}" for t in EVENT_TYPES))
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--email", help="the person, by email")
        who.add_argument("--user-id", help="the person, by user id (sent as metadata.user_id)")
        parser.add_argument("--plan", required=True, help="a plan slug: free, basic, pro, enterprise")
        parser.add_argument(
            "--status",
            default="active",
            choices=["active", "trialing", "past_due", "unpaid", "incomplete", "paused", "canceled"],
        )
        parser.add_argument("--interval", default="month", choices=["month", "year"])
        parser.add_argument("--subscription", default="", help="subscription id (default: one per person)")
        parser.add_argument("--event-id", default="", help="event id (default: a new one; repeat one to replay)")
        parser.add_argument("--url", default="", help="where to POST (loopback only; default: this machine's web)")
        parser.add_argument("--timeout", type=float, default=10.0)

    def handle(self, *args, **options):
        secret = local_secret(settings.BASE_DIR)
        if not secret:
            raise CommandError(
                f"{SECRET_NAME} is not set (scripts/run.sh keeps one in {SECRETS_FILE} when no Stripe key is set)."
            )
        url = options["url"] or default_url()
        if not is_loopback(url):
            raise CommandError(f"{url} is not on this machine: local billing events go to 127.0.0.1 or localhost only.")
        event = build_event(
            options["event"],
            email=options["email"] or "",
            user_id=options["user_id"] or "",
            plan=options["plan"],
            status=options["status"],
            interval=options["interval"],
            subscription_id=options["subscription"],
            event_id=options["event_id"],
        )
        payload = json.dumps(event)
        headers = {"Content-Type": "application/json", "Stripe-Signature": sign(payload, secret, int(time.time()))}
        try:
            response = httpx.post(url, content=payload.encode(), headers=headers, timeout=options["timeout"])
        except httpx.HTTPError as exc:
            raise CommandError(f"could not reach {url}: {exc}") from exc
        self.stdout.write(f"{event['type']} {event['id']} -> {response.status_code} {response.text}")
        if response.status_code >= 400:
            raise CommandError(f"the back office refused the event ({response.status_code})")
