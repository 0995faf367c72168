"""Monitored accounts: registering MT5 logins, resuming them after errors, Scan MT5; the bonus gateway."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from config.errors import ServiceError
from mt5bridge import gateway as gw

from ..choices import (
    AuditAction,
    MonitorStatus,
)
from ..models import MonitoredAccount, Mt5Scan
from .audit import audit_write


def default_gateway() -> gw.MT5Gateway:
    """The broker-side gateway the bonus engine uses (configuration: BONUS_MT5_GATEWAY / BONUS_MT5_SERVER)."""
    return gw.get_gateway(settings.BONUS_MT5_GATEWAY or None, server=settings.BONUS_MT5_SERVER)


def broker_user(gateway, login: int) -> gw.BrokerUser | None:
    try:
        return gateway.user(login)
    except gw.NotFound:
        return None


def email_domain(email: str) -> str:
    """The part after the @ of MT5's email of the client, lowercased (the abuse signal's first key)."""
    return email.rpartition("@")[2].strip().lower()[:128] if "@" in (email or "") else ""


def monitored_values(user: gw.BrokerUser) -> dict:
    return {
        "group": user.group,
        "country": user.country,
        "lead_source": user.lead_source,
        "email_domain": email_domain(user.email),
        "registration": user.registration,
        "leverage": user.leverage,
    }


def account_ensure(*, login: int, user: gw.BrokerUser | None = None) -> MonitoredAccount:
    """The monitored-account row of ``login`` (created, and refreshed from ``user`` when given)."""
    values = monitored_values(user) if user else {}
    account, created = MonitoredAccount.objects.get_or_create(login=login, defaults=values)
    if user and not created and any(getattr(account, k) != v for k, v in values.items()):
        MonitoredAccount.objects.filter(pk=account.pk).update(**values)
        for k, v in values.items():
            setattr(account, k, v)
    return account


def account_lock(login: int) -> MonitoredAccount:
    return MonitoredAccount.objects.select_for_update().get(login=login)


def monitoring_register(*, actor, login: int, gateway=None) -> MonitoredAccount:
    gateway = gateway or default_gateway()
    user = broker_user(gateway, login)
    if user is None:
        raise ServiceError(f"Login {login} does not exist on MT5.", code="account_not_found", status_code=404)
    with transaction.atomic():
        existed = MonitoredAccount.objects.filter(login=login).exists()
        account = account_ensure(login=login, user=user)
        if not existed:
            audit_write(actor=actor, action=AuditAction.ACCOUNT_REGISTERED, login=login, after=monitored_values(user))
    return account


@transaction.atomic
def monitoring_reset_errors(*, actor, login: int) -> MonitoredAccount:
    try:
        account = account_lock(login)
    except MonitoredAccount.DoesNotExist:
        raise ServiceError(f"Login {login} is not monitored.", code="not_monitored", status_code=404) from None
    before = {"status": account.status, "consecutive_errors": account.consecutive_errors}
    account.status, account.consecutive_errors, account.last_error = MonitorStatus.ACTIVE, 0, ""
    account.save(update_fields=["status", "consecutive_errors", "last_error"])
    audit_write(
        actor=actor,
        action=AuditAction.ACCOUNT_RESUMED,
        login=login,
        before=before,
        after={"status": account.status, "consecutive_errors": 0},
    )
    return account


def mt5_scan(*, actor, gateway=None) -> Mt5Scan:
    """Refresh the groups and countries MT5 knows (for campaign targeting) and register new accounts."""
    gateway = gateway or default_gateway()
    users = gateway.users("*")
    groups = sorted({g.name for g in gateway.groups()} | {u.group for u in users})
    countries = sorted({u.country for u in users if u.country})
    with transaction.atomic():
        known = set(MonitoredAccount.objects.values_list("login", flat=True))
        MonitoredAccount.objects.bulk_create(
            [MonitoredAccount(login=u.login, **monitored_values(u)) for u in users if u.login not in known],
            ignore_conflicts=True,
            batch_size=1000,
        )
        scan = Mt5Scan.objects.create(
            scanned_by=actor if not isinstance(actor, str) else None,
            groups=groups,
            countries=countries,
            accounts=len(users),
        )
        audit_write(
            actor=actor,
            action=AuditAction.MT5_SCANNED,
            after={"groups": len(groups), "countries": len(countries), "accounts": len(users)},
        )
    return scan
