"""Write and read paths of signals: publish, the public figures, subscribe, stop, and the fee of each period.

A follower's copy link is an ordinary copy link (``services.copy_link_create``: the plan gate, the limits, the
same engine); the follower is given "view" on the master account for as long as they follow (django-guardian,
as a shared master is given), which is what lets the link exist. Fees are worked out here (``signal_fees``) and
charged by whichever app listens to ``copytrading.signals.signal_fee_due`` (billing, through Stripe), so this app
imports no payment code. docs/signals.md.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Sum
from django.db.models.signals import pre_delete, pre_save
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from accounts.analytics.history import statistics_for_account
from accounts.models import Deal, TradingAccount
from accounts.permissions import restrict
from config.errors import Conflict, ServiceError
from entitlements.gates import require_feature

from . import services
from .choices import CopyKind, CopyStatus
from .models import CopiedPosition, CopyLink
from .selectors import bump_config_version
from .signal_fees import FeeLine, month_bounds, month_of, months_between, period_fee
from .signal_models import (
    FeeStatus,
    SignalAudit,
    SignalFee,
    SignalSubscription,
    StopMode,
    SubscriptionStatus,
    TradingSignal,
)
from .signals import signal_fee_due

TERM_FIELDS = ("name", "description", "min_deposit", "monthly_fee", "performance_fee_pct", "listed")
# What a follower chooses for their link: the sizing of the copy link form and its risk guards.
FOLLOW_FIELDS = (
    "sizing_mode",
    "multiplier",
    "fixed_volume",
    "risk_percent",
    "no_sl",
    "default_sl_points",
    "min_volume",
    "max_volume",
    "max_delay_seconds",
    "max_slippage_points",
    "copy_sltp",
    "close_only",
    "skip_below_min_volume",
    "equity_stop",
    "equity_stop_percent",
    "equity_stop_close",
)
VIEW_MASTER = "accounts.view_tradingaccount"
TRADE_DEALS = (0, 1)  # MT5 DEAL_TYPE_BUY, DEAL_TYPE_SELL
FIGURES_SECONDS = 60


def audit(action: str, *, actor=None, signal=None, subscription=None, **detail: Any) -> SignalAudit:
    return SignalAudit.objects.create(
        action=action,
        actor=actor if getattr(actor, "pk", None) else None,
        signal=signal,
        subscription=subscription,
        detail={k: (str(v) if isinstance(v, Decimal | datetime) else v) for k, v in detail.items()},
    )


# --- Provider ------------------------------------------------------------------------------------------------


def signals_listed():
    return TradingSignal.objects.filter(listed=True).select_related("master", "owner")


def signals_of(user, perm: str = "copytrading.view_tradingsignal"):
    """The signals ``user`` publishes (staff holding the permission: every signal)."""
    return restrict(user, perm, TradingSignal.objects.select_related("master"), owner_path="owner")


def signal_visible(user, pk) -> TradingSignal | None:
    """A listed signal (anyone, signed in or not), or one of the user's own (listed or not)."""
    return signals_listed().filter(pk=pk).first() or signals_of(user).filter(pk=pk).first()


def signal_publish(*, user, master_id, **terms: Any) -> TradingSignal:
    """Publish one of the user's own master accounts as a signal (one signal per account)."""
    require_feature(user, "copy_trading")
    master = services.account_for_trading(user=user, account_id=master_id)
    if master.owner_id != user.pk:
        raise ServiceError("Only the account's owner can publish it as a signal.", code="not_owner", status_code=403)
    _check_terms(terms)
    with transaction.atomic():
        if TradingSignal.objects.filter(master=master).exists():
            raise Conflict("This account is already published as a signal.", code="signal_exists")
        signal = TradingSignal(owner=user, master=master, currency=master.currency or "USD", **terms)
        signal.full_clean()
        signal.save()
        audit("published", actor=user, signal=signal, **{k: getattr(signal, k) for k in TERM_FIELDS})
    return signal


def signal_update(*, user, signal: TradingSignal, **terms: Any) -> TradingSignal:
    """Change the terms: new followers get them; those following keep the fees they subscribed at."""
    _check_terms(terms)
    with transaction.atomic():
        for name, value in terms.items():
            setattr(signal, name, value)
        signal.full_clean()
        signal.save()
        audit("updated", actor=user, signal=signal, **terms)
    cache.delete(_figures_key(signal.pk))
    return signal


def _check_terms(terms: dict) -> None:
    unknown = set(terms) - set(TERM_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown signal fields: {', '.join(sorted(unknown))}.", code="invalid")


def _figures_key(signal_id) -> str:
    return f"copytrading:signal-figures:v1:{signal_id}"


def signal_figures(signal: TradingSignal) -> dict:
    """The verified figures of the public page, from the master's synced history (accounts.analytics); the
    provider edits none of them. Kept FIGURES_SECONDS."""
    cached = cache.get(_figures_key(signal.pk))
    if cached is not None:
        return cached
    stats = statistics_for_account(signal.master)
    summary = stats["summary"]
    months = stats["series"].get("monthly_returns") or []
    figures = {
        "gain_pct": summary.get("gain_pct"),
        "max_drawdown_pct": summary.get("max_drawdown_balance_pct"),
        "max_drawdown_equity_pct": summary.get("max_drawdown_equity_pct"),
        "months": len(months),
        "trades": stats["trades_count"],
        "win_rate_pct": summary.get("win_rate_pct"),
        "net_profit": summary.get("net_profit"),
        "period_start": summary.get("period_start"),
        "period_end": summary.get("period_end"),
        "monthly_returns": [{"month": m["month"], "return_pct": m["return_pct"]} for m in months],
        "last_sync_at": signal.master.last_sync_at.isoformat() if signal.master.last_sync_at else None,
    }
    cache.set(_figures_key(signal.pk), figures, FIGURES_SECONDS)
    return figures


# --- Follower ------------------------------------------------------------------------------------------------


def follows_of(user, perm: str = "copytrading.view_signalsubscription"):
    """The subscriptions ``user`` follows with (staff holding the permission: all)."""
    return restrict(
        user, perm, SignalSubscription.objects.select_related("signal", "account", "link"), owner_path="follower"
    )


def followers_of(signal: TradingSignal):
    return signal.subscriptions.select_related("account", "follower").order_by("-started_at", "-id")


def signal_subscribe(*, user, signal_id, account_id, **values: Any) -> SignalSubscription:
    """Follow a listed signal with one of the user's accounts: checks the minimum deposit against the account's
    balance, gives the follower "view" on the master, creates the copy link with the chosen sizing and guards."""
    unknown = set(values) - set(FOLLOW_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown fields: {', '.join(sorted(unknown))}.", code="invalid")
    signal = signals_listed().filter(pk=signal_id).first()
    if signal is None:
        raise services.NotFoundError("No such signal.")
    account = services.account_for_trading(user=user, account_id=account_id)
    if signal.owner_id == user.pk or account.pk == signal.master_id:
        raise ServiceError("You cannot follow your own signal.", code="own_signal")
    if (account.currency or "USD") != signal.currency:
        raise ServiceError(
            f"The signal's terms are in {signal.currency}; this account is in {account.currency}.",
            code="currency_mismatch",
        )
    if account.balance < signal.min_deposit:
        raise ServiceError(
            f"This signal needs a balance of at least {signal.min_deposit} {signal.currency}; "
            f"the account has {account.balance}.",
            code="below_min_deposit",
            status_code=422,
            details={"min_deposit": str(signal.min_deposit), "balance": str(account.balance)},
        )
    with transaction.atomic():
        # The follower's account row is the lock: a second request for it waits here, then finds the first.
        TradingAccount.objects.select_for_update().filter(pk=account.pk).first()
        if SignalSubscription.objects.filter(signal=signal, account=account, status=SubscriptionStatus.ACTIVE).exists():
            raise Conflict("This account already follows the signal.", code="already_following")
        viewer = restrict(user, VIEW_MASTER, TradingAccount.objects.filter(pk=signal.master_id)).exists()
        if not viewer:
            assign_perm(VIEW_MASTER, user, signal.master)
        link = _follow_link(user=user, signal=signal, account=account, values=values)
        subscription = SignalSubscription.objects.create(
            signal=signal,
            follower=user,
            account=account,
            link=link,
            currency=signal.currency,
            monthly_fee=signal.monthly_fee,
            performance_fee_pct=signal.performance_fee_pct,
            granted_view=not viewer,
            started_at=timezone.now(),
        )
        audit(
            "subscribed",
            actor=user,
            signal=signal,
            subscription=subscription,
            account=str(account.pk),
            link=link.pk,
            monthly_fee=signal.monthly_fee,
            performance_fee_pct=signal.performance_fee_pct,
        )
    return subscription


def _follow_link(*, user, signal: TradingSignal, account: TradingAccount, values: dict) -> CopyLink:
    """A new copy link, or the one a stopped subscription of this account left inactive, switched on again."""
    existing = CopyLink.objects.select_for_update().filter(master=signal.master, slave=account).first()
    if existing is None:
        return services.copy_link_create(user=user, master_id=signal.master_id, slave_id=account.pk, **values)
    if existing.active or not existing.signal_subscriptions.exists():
        raise Conflict(
            "This account already copies the master through a link of its own; delete that link first.",
            code="link_exists",
        )
    require_feature(user, "copy_trading")
    for name, value in values.items():
        setattr(existing, name, value)
    low, high = existing.min_volume, existing.max_volume
    if low is not None and high is not None and low > high:
        raise ServiceError("min_volume is above max_volume.", code="invalid_volume_bounds")
    existing.active = True
    # The equity stop starts afresh from the account's equity now, as a new link's does.
    existing.start_equity, existing.stop_reason, existing.stopped_at = account.equity, "", None
    existing.full_clean()
    existing._signal_resume = True  # type: ignore[attr-defined]  # read by _link_saving: following again
    existing.save()
    bump_config_version()
    return existing


def signal_stop(*, user, subscription: SignalSubscription, close_open: bool) -> SignalSubscription:
    """Stop following now. ``close_open``: the open copies are closed (a copy still in flight closes once it
    opens); otherwise they stay on the account as the follower's own. Idempotent: stopping twice changes nothing."""
    with transaction.atomic():
        subscription = SignalSubscription.objects.select_for_update().get(pk=subscription.pk)
        if subscription.status != SubscriptionStatus.ACTIVE:
            return subscription
        closing = 0
        link = subscription.link
        if link is not None:
            CopyLink.objects.filter(pk=link.pk).update(active=False)
            bump_config_version()
            if close_open:
                closing = _close_copies(link, since=subscription.started_at)
        subscription.status = SubscriptionStatus.STOPPED
        subscription.stopped_at = timezone.now()
        subscription.stop_mode = StopMode.CLOSE if close_open else StopMode.KEEP
        subscription.save(update_fields=["status", "stopped_at", "stop_mode"])
        _release_view(subscription)
        audit(
            "stopped",
            actor=user,
            signal=subscription.signal,
            subscription=subscription,
            mode=subscription.stop_mode,
            copies_closing=closing,
        )
    return subscription


def _release_view(subscription: SignalSubscription) -> None:
    """Take back the "view" on the master this subscription gave, unless another subscription still needs it."""
    if not subscription.granted_view:
        return
    other = (
        SignalSubscription.objects.filter(
            signal_id=subscription.signal_id, follower_id=subscription.follower_id, status=SubscriptionStatus.ACTIVE
        )
        .exclude(pk=subscription.pk)
        .first()
    )
    if other is not None:
        SignalSubscription.objects.filter(pk=other.pk).update(granted_view=True)
    else:
        remove_perm(VIEW_MASTER, subscription.follower, subscription.signal.master)


def _close_copies(link: CopyLink, *, since: datetime) -> int:
    """Queue a close for each open copy of the link (cancel for a pending order); flag copies in flight."""
    rows = (
        CopiedPosition.objects.select_for_update(of=("self",))
        .select_related("link__slave")
        .filter(
            link=link, opened_at__gte=since, status__in=(CopyStatus.OPEN, CopyStatus.PENDING), close_command_id=None
        )
    )
    count = 0
    for row in rows:
        if row.status == CopyStatus.PENDING or row.slave_ticket is None:
            row.close_requested = True
            row.save(update_fields=["close_requested"])
            count += 1
            continue
        services.close_copy_now(row, reason="signal-stop")
        count += 1
    return count


# --- The link a subscription made ----------------------------------------------------------------------------


def connect_receivers() -> None:
    """A link a stopped subscription left is switched on again only by following again (never by hand: that
    would copy the signal without its fees); deleting a followed link stops the subscription (copies kept)."""
    pre_save.connect(_link_saving, sender=CopyLink, dispatch_uid="copytrading.signals.link_saving")
    pre_delete.connect(_link_deleting, sender=CopyLink, dispatch_uid="copytrading.signals.link_deleting")


def _link_saving(instance: CopyLink, **_kwargs) -> None:
    if not instance.pk or not instance.active or getattr(instance, "_signal_resume", False):
        return
    follows = SignalSubscription.objects.filter(link_id=instance.pk)
    if follows.exists() and not follows.filter(status=SubscriptionStatus.ACTIVE).exists():
        instance.active = False


def _link_deleting(instance: CopyLink, **_kwargs) -> None:
    # Once the deletion commits: the subscription may go in the same deletion (its account deleted), and rows
    # written while Django deletes would miss its cascade.
    ids = list(
        SignalSubscription.objects.filter(link_id=instance.pk, status=SubscriptionStatus.ACTIVE).values_list(
            "pk", flat=True
        )
    )
    if ids:
        transaction.on_commit(lambda: _stop_unlinked(ids))


def _stop_unlinked(ids: list) -> None:
    for subscription in SignalSubscription.objects.filter(pk__in=ids, status=SubscriptionStatus.ACTIVE):
        signal_stop(user=None, subscription=subscription, close_open=False)


# --- Fees ----------------------------------------------------------------------------------------------------


def copied_pnl(subscription: SignalSubscription, start: datetime, end: datetime) -> Decimal:
    """The P&L (profit, commission, swap, fee) of the deals of the subscription's copies in [start, end): copies
    made while it was active; after a stop that kept them open, they are the follower's and count no more."""
    if subscription.link_id is None:
        return Decimal("0")
    low = max(start, subscription.started_at)
    high = end
    if subscription.stopped_at is not None and subscription.stop_mode != StopMode.CLOSE:
        high = min(end, subscription.stopped_at)
    if low >= high:
        return Decimal("0")
    copies = CopiedPosition.objects.filter(
        link_id=subscription.link_id, kind=CopyKind.POSITION, slave_ticket__isnull=False
    ).filter(opened_at__gte=subscription.started_at)
    if subscription.stopped_at is not None:
        copies = copies.filter(opened_at__lt=subscription.stopped_at)
    total = Deal.objects.filter(
        account_id=subscription.account_id,
        deal_type__in=TRADE_DEALS,
        position_id__in=copies.values("slave_ticket"),
        time__gte=low,
        time__lt=high,
    ).aggregate(pnl=Sum(F("profit") + F("commission") + F("swap") + F("fee")))["pnl"]
    return total or Decimal("0")


def subscription_settle(*, subscription_id, now: datetime | None = None) -> list[SignalFee]:
    """Work out the fee of every whole month the subscription was active in and that is not settled yet, in
    order (each month's high-water mark is the one before it). Idempotent: a month is settled once."""
    now = now or timezone.now()
    created: list[SignalFee] = []
    with transaction.atomic():
        sub = SignalSubscription.objects.select_for_update().select_related("signal").get(pk=subscription_id)
        last = month_of(now)  # the running month is not over: settle up to the one before it
        first = month_of(sub.started_at)
        final = month_of(sub.stopped_at) if sub.stopped_at else None
        done = set(sub.fees.values_list("period", flat=True))
        for period in months_between(first, last):
            if period == last or (final is not None and period > final) or period in done:
                continue
            start, end = month_bounds(period)
            line = period_fee(
                pnl=copied_pnl(sub, start, end),
                cumulative=sub.cumulative_pnl,
                hwm=sub.high_water_mark,
                performance_fee_pct=sub.performance_fee_pct,
                monthly_fee=sub.monthly_fee,
            )
            fee = _fee_row(sub, period, start, end, line)
            sub.cumulative_pnl, sub.high_water_mark = line.cumulative_after, line.hwm_after
            sub.save(update_fields=["cumulative_pnl", "high_water_mark"])
            audit(
                "fee_computed",
                signal=sub.signal,
                subscription=sub,
                period=period.isoformat(),
                pnl=line.pnl,
                hwm_before=line.hwm_before,
                hwm_after=line.hwm_after,
                performance_fee=line.performance_fee,
                monthly_fee=line.monthly_fee,
                total=line.total,
            )
            created.append(fee)
    return created


def _fee_row(sub: SignalSubscription, period, start, end, line: FeeLine) -> SignalFee:
    return SignalFee.objects.create(
        subscription=sub,
        period=period,
        period_start=start,
        period_end=end,
        currency=sub.currency,
        pnl=line.pnl,
        cumulative_before=line.cumulative_before,
        cumulative_after=line.cumulative_after,
        hwm_before=line.hwm_before,
        hwm_after=line.hwm_after,
        chargeable_gain=line.chargeable_gain,
        performance_fee_pct=line.performance_fee_pct,
        performance_fee=line.performance_fee,
        monthly_fee=line.monthly_fee,
        total=line.total,
        status=FeeStatus.DUE if line.total > 0 else FeeStatus.NOTHING,
    )


def fee_charge(*, fee_id) -> SignalFee:
    """Charge one due fee through the app that listens to ``signal_fee_due`` (billing). Idempotent: a fee
    charged is never charged again, and the charge carries the key ``signal-fee-<id>`` to the payment provider."""
    with transaction.atomic():
        fee = SignalFee.objects.select_for_update().select_related("subscription__signal").get(pk=fee_id)
        if fee.status not in (FeeStatus.DUE, FeeStatus.FAILED):
            return fee
        sub = fee.subscription
        answers = signal_fee_due.send_robust(
            sender=SignalFee,
            fee_id=fee.pk,
            user=sub.follower,
            amount=fee.total,
            currency=fee.currency,
            description=f"{sub.signal.name}: signal fee {fee.period:%Y-%m}",
            idempotency_key=f"signal-fee-{fee.pk}",
        )
        replies = [reply for _receiver, reply in answers if isinstance(reply, dict)]
        errors = [str(reply) for _receiver, reply in answers if isinstance(reply, Exception)]
        if not replies:
            fee.charge_error = (errors[0] if errors else "no payment app answered")[:255]
            fee.status = FeeStatus.FAILED if errors else fee.status
        elif replies[0].get("status") == "charged":
            fee.status, fee.charge_error = FeeStatus.CHARGED, ""
            fee.charge_reference = str(replies[0].get("reference", ""))[:255]
            fee.charged_at = timezone.now()
        else:
            fee.status = FeeStatus.FAILED
            fee.charge_error = str(replies[0].get("error") or "refused")[:255]
        fee.save(update_fields=["status", "charge_reference", "charge_error", "charged_at"])
        audit(
            "fee_charged" if fee.status == FeeStatus.CHARGED else "fee_not_charged",
            signal=sub.signal,
            subscription=sub,
            fee=fee.pk,
            period=fee.period.isoformat(),
            total=fee.total,
            reference=fee.charge_reference,
            error=fee.charge_error,
        )
    return fee


def fees_run(*, now: datetime | None = None) -> dict:
    """Settle every subscription's finished months and charge what is due (the nightly job; run again at will)."""
    now = now or timezone.now()
    period_start = month_bounds(month_of(now))[0]
    subscriptions = SignalSubscription.objects.filter(started_at__lt=period_start).values_list("pk", flat=True)
    settled = sum(len(subscription_settle(subscription_id=pk, now=now)) for pk in subscriptions)
    charged = failed = 0
    for fee_id in SignalFee.objects.filter(status__in=(FeeStatus.DUE, FeeStatus.FAILED)).values_list("pk", flat=True):
        status = fee_charge(fee_id=fee_id).status
        charged += status == FeeStatus.CHARGED
        failed += status != FeeStatus.CHARGED
    return {"settled": settled, "charged": charged, "not_charged": failed}


def earnings_of(signal: TradingSignal) -> dict:
    """What the provider earned from the signal: fees charged, and fees worked out but not charged yet."""
    fees = SignalFee.objects.filter(subscription__signal=signal)
    charged = fees.filter(status=FeeStatus.CHARGED).aggregate(total=Sum("total"))["total"] or Decimal("0")
    pending = fees.filter(status__in=(FeeStatus.DUE, FeeStatus.FAILED)).aggregate(total=Sum("total"))["total"]
    return {"currency": signal.currency, "charged": charged, "pending": pending or Decimal("0")}
