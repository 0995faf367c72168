"""Read paths of the bonuses app shared by the API and the admin: lookup, metadata, dashboard, monitoring."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q, Sum
from django.utils import timezone

from config.errors import ServiceError
from mt5bridge import gateway as gw

from .choices import OPEN_BONUS_STATUSES, BonusStatus, CampaignStatus, MonitorStatus, OperationStatus
from .models import AuditLog, Bonus, BonusOperation, Campaign, MonitorCycle, MonitoredAccount, MonitorShard, Mt5Scan


def campaigns_with_counts():
    return Campaign.objects.annotate(bonuses_active=Count("bonuses", filter=Q(bonuses__status__in=OPEN_BONUS_STATUSES)))


def mt5_metadata() -> dict:
    scan = Mt5Scan.objects.first()
    groups = set(scan.groups) if scan else set()
    countries = set(scan.countries) if scan else set()
    accounts = MonitoredAccount.objects.values_list("login", "group", "country")
    logins = []
    for login, group, country in accounts.iterator(chunk_size=5000):
        logins.append(login)
        if group:
            groups.add(group)
        if country:
            countries.add(country)
    return {
        "groups": sorted(groups),
        "countries": sorted(countries),
        "accounts": logins,
        "scanned_at": scan.scanned_at if scan else None,
    }


def _money(value) -> str:
    return str(value) if value is not None else None


def account_lookup(*, login: int, gateway) -> dict:
    """MT5 figures of the login now, its bonus history and audit trail (404 when MT5 does not know it)."""
    try:
        user = gateway.user(login)
    except gw.NotFound:
        raise ServiceError(f"Login {login} does not exist on MT5.", code="account_not_found", status_code=404) from None
    info = gateway.accounts_info([login]).get(login)
    monitored = MonitoredAccount.objects.filter(login=login).first()
    bonuses = Bonus.objects.filter(login=login).select_related("campaign").order_by("-created_at")[:200]
    audit = AuditLog.objects.filter(login=login).order_by("-created_at", "-id")[:200]
    return {
        "login": login,
        "group": user.group,
        "country": user.country,
        "lead_source": user.lead_source,
        "name": user.name,
        "leverage": info.leverage if info else user.leverage,
        "balance": _money(info.balance if info else user.balance),
        "credit": _money(info.credit if info else user.credit),
        "equity": _money(info.equity) if info else None,
        "monitoring": None
        if monitored is None
        else {
            "status": monitored.status,
            "consecutive_errors": monitored.consecutive_errors,
            "last_error": monitored.last_error,
            "original_leverage": monitored.original_leverage,
        },
        "bonuses": [
            {
                "id": b.pk,
                "campaign": b.campaign.name,
                "bonus_type": b.bonus_type,
                "status": b.status,
                "amount": _money(b.amount),
                "credit_outstanding": _money(b.credit_outstanding),
                "converted_amount": _money(b.converted_amount),
                "lots_traded": _money(b.lots_traded),
                "lots_required": _money(b.lots_required),
                "created_at": b.created_at,
                "ended_at": b.ended_at,
            }
            for b in bonuses
        ],
        "audit": [
            {
                "id": a.pk,
                "created_at": a.created_at,
                "actor": a.actor_label,
                "action": a.action,
                "bonus": a.bonus_id,
                "before": a.before,
                "after": a.after,
                "message": a.message,
            }
            for a in audit
        ],
    }


def dashboard() -> dict:
    since = timezone.now() - timedelta(days=30)
    bonuses = Bonus.objects.aggregate(
        active=Count("id", filter=Q(status__in=OPEN_BONUS_STATUSES)),
        outstanding=Sum("credit_outstanding", filter=Q(status__in=OPEN_BONUS_STATUSES)),
        converted=Count("id", filter=Q(status=BonusStatus.CONVERTED)),
        converted_amount=Sum("converted_amount"),
        cancelled_30d=Count(
            "id", filter=Q(status__in=[BonusStatus.CANCELLED, BonusStatus.EXPIRED], ended_at__gte=since)
        ),
        given_30d=Sum("amount", filter=Q(created_at__gte=since) & ~Q(status=BonusStatus.FAILED)),
    )
    return {
        "active_campaigns": Campaign.objects.filter(status=CampaignStatus.ACTIVE).count(),
        "active_bonuses": bonuses["active"],
        "credit_outstanding": bonuses["outstanding"] or 0,
        "conversions": bonuses["converted"],
        "converted_amount": bonuses["converted_amount"] or 0,
        "cancellations_30d": bonuses["cancelled_30d"],
        "given_30d": bonuses["given_30d"] or 0,
    }


def monitoring_status() -> dict:
    now = timezone.now()
    counts = MonitoredAccount.objects.aggregate(
        total=Count("id"),
        active=Count("id", filter=Q(status=MonitorStatus.ACTIVE)),
        paused=Count("id", filter=Q(status=MonitorStatus.PAUSED)),
        erroring=Count("id", filter=Q(consecutive_errors__gt=0)),
    )
    shards = [
        {
            "shard": s.shard,
            "shards": s.shards,
            "holder": s.holder,
            "alive": bool(s.lease_until and s.lease_until > now),
            "last_cycle_at": s.last_cycle_at,
            "last_duration_ms": round(s.last_duration_ms, 2),
            "last_accounts": s.last_accounts,
            "last_errors": s.last_errors,
            "cycles": s.cycles,
            "deposits": s.deposits,
            "withdrawals": s.withdrawals,
            "drawdowns": s.drawdowns,
            "errors": s.errors,
        }
        for s in MonitorShard.objects.all()
    ]
    recent = [
        {
            "started_at": c.started_at,
            "duration_ms": round(c.duration_ms, 2),
            "shard": c.shard,
            "shards": c.shards,
            "accounts": c.accounts,
            "discovered": c.discovered,
            "deposits": c.deposits,
            "withdrawals": c.withdrawals,
            "drawdowns": c.drawdowns,
            "conversions": c.conversions,
            "errors": c.errors,
            "paused": c.paused,
            "error": c.error,
        }
        for c in MonitorCycle.objects.all()[:20]
    ]
    return {
        "accounts": counts,
        "scheduler_running": any(s["alive"] for s in shards),
        "shards": shards,
        "pending_operations": BonusOperation.objects.filter(status=OperationStatus.PENDING).count(),
        # Postings retried BONUS_OPERATION_MAX_ATTEMPTS times: a person retries them or marks them resolved.
        "failed_operations": BonusOperation.objects.filter(status=OperationStatus.FAILED).count(),
        "recent_cycles": recent,
    }
