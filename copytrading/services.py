"""Write paths of copy trading: links, command results, rules, copy modes, templates and web-terminal orders."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import BigIntegerField, Case, Value, When
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.models import TradingAccount
from accounts.permissions import restrict
from config.errors import Conflict, ServiceError
from entitlements.gates import require_feature, require_limit
from mt5bridge import gateway as gw
from mt5bridge.commands import CommandSpec, command_enqueue, commands_enqueue_bulk
from mt5bridge.symbols import detect_symbols

from .choices import AccountMode, CopyKind, CopyStatus
from .mapping import BrokerSymbols, broker_symbols, resolve
from .models import (
    AccountCopyState,
    CopiedPosition,
    CopyEvent,
    CopyLink,
    OrderTemplate,
    Rule,
    link_id_of,
    link_origin_ref,
)
from .rules import zone
from .selectors import bump_config_version
from .signals import copy_command_failed
from .sizing import AccountFigures, SizingSkip, copy_volume

LINK_FIELDS = (
    "active",
    "priority",
    "sizing_mode",
    "multiplier",
    "fixed_volume",
    "risk_percent",
    "no_sl",
    "default_sl_points",
    "contract_size_aware",
    "min_volume",
    "max_volume",
    "symbol_overrides",
    "symbols_include",
    "symbols_exclude",
    "magics_include",
    "magics_exclude",
    "reverse",
    "copy_sltp",
    "copy_pending",
    "close_only",
    "max_delay_seconds",
    "max_slippage_points",
    "skip_below_min_volume",
    "equity_stop",
    "equity_stop_percent",
    "equity_stop_close",
)
RULE_FIELDS = (
    "kind",
    "action",
    "active",
    "threshold",
    "threshold_is_percent",
    "max_open_trades",
    "symbols_allow",
    "symbols_deny",
    "hours_start",
    "hours_end",
    "timezone",
)


class NotFoundError(ServiceError):
    status_code = 404
    code = "not_found"


# --- Accounts a user may use ------------------------------------------------------------


def account_for_trading(*, user, account_id) -> TradingAccount:
    """An account ``user`` may send orders to (own, or shared with the change permission); else 404."""
    account = (
        restrict(user, "accounts.change_tradingaccount", TradingAccount.objects.all()).filter(pk=account_id).first()
    )
    if account is None:
        raise NotFoundError("No such trading account.")
    return account


def account_for_viewing(*, user, account_id) -> TradingAccount:
    account = restrict(user, "accounts.view_tradingaccount", TradingAccount.objects.all()).filter(pk=account_id).first()
    if account is None:
        raise NotFoundError("No such trading account.")
    return account


# --- Links ------------------------------------------------------------------------------


def _validate_link_values(values: dict) -> None:
    low, high = values.get("min_volume"), values.get("max_volume")
    if low is not None and high is not None and low > high:
        raise ServiceError("min_volume is above max_volume.", code="invalid_volume_bounds")
    overrides = values.get("symbol_overrides")
    if overrides is not None and (
        not isinstance(overrides, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in overrides.items())
    ):
        raise ServiceError("symbol_overrides maps master symbols to slave symbols (strings).", code="invalid_overrides")


def copy_link_create(*, user, master_id, slave_id, **values: Any) -> CopyLink:
    """Link a master (own or shared with the user) to one of the user's own accounts."""
    require_feature(user, "copy_trading")
    master = account_for_viewing(user=user, account_id=master_id)
    slave = account_for_trading(user=user, account_id=slave_id)
    if master.pk == slave.pk:
        raise ServiceError("An account cannot copy itself.", code="same_account")
    _validate_link_values(values)
    unknown = set(values) - set(LINK_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown link fields: {', '.join(sorted(unknown))}.", code="invalid")
    with transaction.atomic():
        if CopyLink.objects.filter(master=master, slave=slave).exists():
            raise Conflict("These accounts are already linked.", code="link_exists")
        require_limit(user, "copy_links", CopyLink.objects.filter(created_by=user).count())
        require_limit(user, "slaves_per_master", CopyLink.objects.filter(master=master).count())
        link = CopyLink(master=master, slave=slave, created_by=user, start_equity=slave.equity, **values)
        link.full_clean()
        link.save()
        bump_config_version()
    return link


def copy_link_update(*, link: CopyLink, **values: Any) -> CopyLink:
    unknown = set(values) - set(LINK_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown link fields: {', '.join(sorted(unknown))}.", code="invalid")
    merged = {f: getattr(link, f) for f in ("min_volume", "max_volume")} | values
    _validate_link_values(merged)
    with transaction.atomic():
        for name, value in values.items():
            setattr(link, name, value)
        if link.start_equity is None:  # a link older than its equity stop: it starts now
            link.start_equity = link.slave.equity
        link.full_clean()
        link.save()
        bump_config_version()
    return link


def copy_link_delete(*, link: CopyLink) -> None:
    with transaction.atomic():
        link.delete()
        bump_config_version()


# --- Command results --------------------------------------------------------------------


def copy_result_apply(*, command: Any) -> None:
    """Book a copy command's outcome on its copy row (idempotent: a repeated result changes nothing)."""
    status = command.status
    if status not in ("executed", "failed", "expired", "cancelled"):
        return
    result = command.result or {}
    if status == "executed" and _executed_in_one_statement(command, result):
        return
    with transaction.atomic():
        opened = CopiedPosition.objects.select_for_update().filter(open_command_id=command.id).first()
        if opened is not None:
            _book_open(opened, command, status, result)
            return
        closing = CopiedPosition.objects.select_for_update().filter(close_command_id=command.id).first()
        if closing is not None:
            if status == "executed":
                closing.status = CopyStatus.CLOSED
                closing.closed_at = timezone.now()
            else:
                closing.close_requested = False
                _failure_event(closing, command, status)
            closing.save(update_fields=["status", "closed_at", "close_requested"])
            if status in FAILED_STATUSES:
                _announce_failure(closing, command, status)
        elif status != "executed":
            link = CopyLink.objects.filter(pk=link_id_of(command.origin_ref)).first()
            if link is not None:
                CopyEvent.objects.create(
                    link=link,
                    master_account_id=link.master_id,
                    slave_account_id=link.slave_id,
                    intent=command.kind,
                    status="failed",
                    reason_code=f"command_{status}",
                    reason=_failure_text(command, status),
                    symbol=str((command.params or {}).get("symbol", ""))[:64],
                )


def _executed_in_one_statement(command: Any, result: dict) -> bool:
    """Book the two common outcomes as one conditional UPDATE each, without a lock or a read: an executed open whose
    copy was not asked to close meanwhile, and an executed close. True when a row was booked; anything else (a close
    requested while the open was in flight, a repeated result) takes the locked path, which sees the same rows.

    At 4 beats a second per master the locked read-then-save was 18 % of the server's CPU (docs/benchmarks-ea.md)."""

    changes: dict[str, Any] = {
        "status": CopyStatus.OPEN,
        "slave_ticket": Case(
            When(kind=CopyKind.ORDER, then=Cast(Value(_ticket(result, CopyKind.ORDER)), BigIntegerField())),
            default=Cast(Value(_ticket(result, CopyKind.POSITION)), BigIntegerField()),
        ),
    }
    volume = _volume(result)
    if volume is not None:
        changes["slave_volume"] = volume
    pending = CopiedPosition.objects.filter(
        open_command_id=command.id, status=CopyStatus.PENDING, close_requested=False
    )
    if pending.update(**changes):
        return True
    closing = CopiedPosition.objects.filter(close_command_id=command.id).exclude(status=CopyStatus.CLOSED)
    return bool(closing.update(status=CopyStatus.CLOSED, closed_at=timezone.now()))


def _ticket(result: dict, kind: str) -> int | None:
    """The slave's ticket of an executed open: the order's for a pending-order copy, else the position's."""
    ticket = result.get("order") if kind == CopyKind.ORDER else (result.get("position") or result.get("order"))
    try:
        return int(ticket) if ticket is not None else None
    except (TypeError, ValueError):
        return None


def _volume(result: dict) -> Decimal | None:
    if not result.get("volume"):
        return None
    try:
        return Decimal(str(result["volume"]))
    except ArithmeticError:
        return None


def _book_open(row: CopiedPosition, command: Any, status: str, result: dict) -> None:
    if row.status != CopyStatus.PENDING:
        return
    if status == "executed":
        row.slave_ticket = _ticket(result, row.kind)
        row.status = CopyStatus.OPEN
        volume = _volume(result)
        if volume is not None:
            row.slave_volume = volume
        row.save(update_fields=["slave_ticket", "status", "slave_volume"])
        if row.close_requested and row.slave_ticket is not None:
            close_copy_now(row)
        return
    row.status = CopyStatus.FAILED
    row.closed_at = timezone.now()
    row.save(update_fields=["status", "closed_at"])
    _failure_event(row, command, status)
    if status in FAILED_STATUSES:
        _announce_failure(row, command, status)


def close_copy_now(row: CopiedPosition, *, reason: str = "late-close") -> None:
    """Close one copy the link holds now: the master closed while the copy was in flight (``late-close``), or the
    link's equity stop closes its copies. ``reason`` ends the command's idempotency key."""

    link = row.link
    if row.kind == CopyKind.ORDER:
        kind, params = "cancel_pending", {"ticket": row.slave_ticket}
    elif link.slave.is_hedging:
        kind, params = "close", {"ticket": row.slave_ticket}
    else:
        kind = "open_market"
        params = {
            "symbol": row.slave_symbol,
            "side": "sell" if row.slave_side == "buy" else "buy",
            "volume": format(row.slave_volume, "f"),
            "sl": "0",
            "tp": "0",
            "comment": row.copy_id,
            "magic": settings.COPY_MAGIC,
            "deviation": link.max_slippage_points,
        }
    command = command_enqueue(
        account_id=str(row.slave_account_id),
        kind=kind,
        params=params,
        origin="copy",
        idempotency_key=f"copy:{link.id}:{row.id}:{reason}"[:100],
        origin_ref=link_origin_ref(link.id),
    )
    row.close_command_id = command.id
    row.save(update_fields=["close_command_id"])


def _failure_text(command: Any, status: str) -> str:
    if status == "expired":
        return "the slave did not take the copy within the link's max delay (offline or too slow)"
    if status == "cancelled":
        return "the copy command was cancelled"
    message = getattr(command, "message", "") or ""
    return f"the slave's MT5 refused it: retcode {command.retcode} {message}".strip()[:255]


# A copy command the slave's MT5 refused, or that the slave never took: announced to the apps above (a
# cancellation is someone's choice, not a failure).
FAILED_STATUSES = ("failed", "expired")


def _announce_failure(row: CopiedPosition, command: Any, status: str) -> None:
    """Send ``copy_command_failed`` once the booking commits (receivers call out, e.g. outbound webhooks)."""
    retcode, reason = command.retcode, _failure_text(command, status)
    transaction.on_commit(
        lambda: copy_command_failed.send_robust(sender=CopiedPosition, copy=row, retcode=retcode, reason=reason)
    )


def _failure_event(row: CopiedPosition, command: Any, status: str) -> None:
    link = row.link
    CopyEvent.objects.create(
        link=link,
        master_account_id=link.master_id,
        slave_account_id=row.slave_account_id,
        intent=command.kind,
        status="failed",
        reason_code=f"command_{status}",
        reason=_failure_text(command, status),
        master_ticket=row.master_ticket,
        symbol=row.slave_symbol,
        volume=row.slave_volume,
    )


# --- Rules and copy modes ---------------------------------------------------------------


def _validate_rule(values: dict) -> None:
    kind = values.get("kind")
    needs = {
        "equity_stop": ("threshold",),
        "daily_loss": ("threshold",),
        "max_open_trades": ("max_open_trades",),
        "trading_hours": ("hours_start", "hours_end"),
    }.get(kind, ())
    missing = [name for name in needs if values.get(name) is None]
    if missing:
        raise ServiceError(
            f"A {kind} rule needs {', '.join(missing)}.", code="invalid_rule", details={"missing": missing}
        )
    if kind == "symbol_filter" and not (values.get("symbols_allow") or values.get("symbols_deny")):
        raise ServiceError("A symbol filter needs an allow or a deny list.", code="invalid_rule")
    if values.get("timezone"):
        if zone(values["timezone"]).key != values["timezone"] and values["timezone"] != "UTC":
            raise ServiceError(f"Unknown time zone {values['timezone']!r}.", code="invalid_timezone")


def rule_create(*, user, account_id, **values: Any) -> Rule:
    require_feature(user, "rules")
    account = account_for_trading(user=user, account_id=account_id)
    _validate_rule(values)
    with transaction.atomic():
        rule = Rule(account=account, **{k: v for k, v in values.items() if k in RULE_FIELDS})
        rule.full_clean()
        rule.save()
        bump_config_version()
    return rule


def rule_update(*, rule: Rule, **values: Any) -> Rule:
    merged = {f: getattr(rule, f) for f in RULE_FIELDS} | values
    _validate_rule(merged)
    with transaction.atomic():
        for name, value in values.items():
            if name in RULE_FIELDS:
                setattr(rule, name, value)
        rule.triggered = False
        rule.full_clean()
        rule.save()
        bump_config_version()
    return rule


def rule_delete(*, rule: Rule) -> None:
    with transaction.atomic():
        rule.delete()
        bump_config_version()


def copy_mode_set(*, account: TradingAccount, mode: str, reason: str = "") -> AccountCopyState:
    """Set an account's copy mode (the trader resumes after a rule paused it)."""
    if mode not in AccountMode.values:
        raise ServiceError(f"Unknown mode {mode!r}.", code="invalid_mode")
    with transaction.atomic():
        state, _ = AccountCopyState.objects.update_or_create(
            account=account, defaults={"mode": mode, "mode_reason": reason[:255]}
        )
        bump_config_version()
    return state


# --- Web terminal and templates ---------------------------------------------------------

TERMINAL_KINDS = (
    "open_market",
    "place_pending",
    "close",
    "close_partial",
    "modify_sltp",
    "modify_pending",
    "cancel_pending",
    "close_all",
)
OPENING_KINDS = ("open_market", "place_pending")


def _expiry():
    return timezone.now() + timedelta(seconds=settings.COPY_COMMAND_EXPIRY_SECONDS)


def _mode_allows(account: TradingAccount, kind: str) -> None:
    if kind not in OPENING_KINDS:
        return
    mode = AccountCopyState.objects.filter(account=account).values_list("mode", flat=True).first()
    if mode in (AccountMode.PAUSED, AccountMode.CLOSE_ONLY):
        raise Conflict(
            f"The account is in {mode.replace('_', '-')} mode; new orders are refused.", code="account_" + mode
        )


def terminal_order_send(*, user, account_id, kind: str, params: dict, client_key: str | None = None):
    """Queue one web-terminal order for an account's EA."""

    require_feature(user, "web_terminal")
    if kind not in TERMINAL_KINDS:
        raise ServiceError(f"Unknown order kind {kind!r}.", code="invalid_kind")
    account = account_for_trading(user=user, account_id=account_id)
    _mode_allows(account, kind)
    key = f"web:{user.pk}:{client_key}"[:100] if client_key else None
    with transaction.atomic():
        return command_enqueue(
            account_id=str(account.pk),
            kind=kind,
            params=params,
            origin="web_terminal",
            expires_at=_expiry(),
            idempotency_key=key,
        )


def template_order_params(*, template: OrderTemplate, account: TradingAccount) -> dict:
    """open_market params of a template on one account: its broker's symbol, volume, SL/TP from points."""

    symbols = broker_symbols(account.gateway_kind, account.server, account.login)
    # A template names a symbol the trader's way (EURUSD); each broker's list says how it spells it.
    source = BrokerSymbols(detected=detect_symbols([template.symbol]), specs={}) if symbols is not None else None
    target = resolve(template.symbol, source, symbols)
    if target is None:
        raise ServiceError(f"{template.symbol} is not offered on {account.server}.", code="symbol_unmapped")
    point = target.spec.point
    try:
        tick = gw.get_gateway(account.gateway_kind, server=account.server).tick(target.symbol)
    except gw.GatewayError as exc:
        raise ServiceError(f"No price for {target.symbol}: {exc}", code="no_price") from exc
    buy = template.side == "buy"
    price = tick.ask if buy else tick.bid
    sign = Decimal(1) if buy else Decimal(-1)
    sl = price - sign * template.sl_points * point if template.sl_points and point else Decimal(0)
    tp = price + sign * template.tp_points * point if template.tp_points and point else Decimal(0)
    if template.risk_percent:
        try:
            volume = copy_volume(
                "risk_percent",
                rules=target.spec.volume,
                master_volume=Decimal(0),
                risk_percent=template.risk_percent,
                slave=AccountFigures.of(account),
                sl_distance=template.sl_points * point if point else None,
                slave_contract_size=target.spec.contract_size,
            )
        except SizingSkip as skip:
            raise ServiceError(skip.message, code=skip.code) from skip
    else:
        volume = copy_volume(
            "fixed", rules=target.spec.volume, master_volume=Decimal(0), fixed_volume=template.volume or Decimal("0")
        )
    return {
        "symbol": target.symbol,
        "side": template.side,
        "volume": format(volume, "f"),
        "sl": format(sl, "f"),
        "tp": format(tp, "f"),
        "comment": (template.comment or template.name)[:31],
        "magic": 0,
        "deviation": 20,
    }


def template_place(*, user, template: OrderTemplate, account_ids: list, client_key: str | None = None) -> dict:
    """Place a template's order on many accounts at once; accounts that cannot take it are reported, not fatal."""

    require_feature(user, "templates")
    specs, errors = [], {}
    for account_id in dict.fromkeys(str(a) for a in account_ids):
        try:
            account = account_for_trading(user=user, account_id=account_id)
            _mode_allows(account, "open_market")
            params = template_order_params(template=template, account=account)
        except ServiceError as exc:
            errors[account_id] = {"code": exc.code, "message": exc.message}
            continue
        key = f"tpl:{template.pk}:{client_key}"[:100] if client_key else None
        specs.append(
            CommandSpec(
                account_id=account_id,
                kind="open_market",
                params=params,
                origin="template",
                expires_at=_expiry(),
                idempotency_key=key,
            )
        )
    if not specs and errors and all(e["code"] == "not_found" for e in errors.values()):
        raise NotFoundError("No such trading account.")
    with transaction.atomic():
        commands = commands_enqueue_bulk(specs) if specs else []
    return {"commands": commands, "errors": errors}


def template_create(*, user, **values: Any) -> OrderTemplate:
    require_feature(user, "templates")
    _validate_template(values)
    if OrderTemplate.objects.filter(owner=user, name=values.get("name")).exists():
        raise Conflict("A template with this name exists.", code="template_exists")
    template = OrderTemplate(owner=user, **values)
    template.full_clean()
    template.save()
    return template


def template_update(*, template: OrderTemplate, **values: Any) -> OrderTemplate:
    merged = {
        "volume": template.volume,
        "risk_percent": template.risk_percent,
        "sl_points": template.sl_points,
    } | values
    _validate_template(merged)
    for name, value in values.items():
        setattr(template, name, value)
    template.full_clean()
    template.save()
    return template


def _validate_template(values: dict) -> None:
    volume, risk = values.get("volume"), values.get("risk_percent")
    if (volume is None) == (risk is None):
        raise ServiceError("A template has either a volume or a risk %.", code="invalid_template")
    if risk is not None and not values.get("sl_points"):
        raise ServiceError("Risk sizing needs sl_points.", code="invalid_template")
