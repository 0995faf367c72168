"""Write paths for trading accounts: add (credentials checked first), edit, delete, resume."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction

from config.errors import Conflict, ServiceError
from mt5bridge import gateway as gw

from .choices import SyncStatus
from .models import TradingAccount, User
from .vault import encrypt

logger = logging.getLogger(__name__)


class CredentialsRefused(ServiceError):
    code = "credentials_refused"


class GatewayDown(ServiceError):
    status_code = 502
    code = "mt5_unreachable"


def check_credentials(*, login: int, password: str, server: str, gateway_kind: str) -> gw.AccountInfo:
    """Log in through the gateway; turn its refusals into clear, password-free errors."""
    gateway = gw.get_gateway(gateway_kind, server=server)
    try:
        return gateway.login(gw.Credentials(login=login, password=password, server=server))
    except gw.AuthenticationFailed:
        raise CredentialsRefused(
            f"The MT5 server {server!r} refused login {login} with that password. Check the login, password and server."
        ) from None
    except gw.GatewayUnavailable as exc:
        raise GatewayDown(f"The MT5 server {server!r} could not be reached: {exc}. Nothing was stored.") from None
    except gw.GatewayError as exc:
        raise ServiceError(f"The MT5 server {server!r} answered with an error: {exc}", code="mt5_error") from None


def default_gateway_kind(server: str) -> str:
    return settings.MT5_SERVER_GATEWAYS.get(server) or settings.MT5_GATEWAY


def trading_account_create(
    *,
    owner: User,
    login: int,
    password: str,
    server: str,
    category: str = "demo",
    name: str = "",
    gateway_kind: str | None = None,
    sync_now: bool = True,
) -> TradingAccount:
    """Connect an MT5 account. The credentials are checked before anything is stored."""
    from entitlements.gates import require_limit

    require_limit(owner, "accounts", TradingAccount.objects.filter(owner=owner, is_active=True).count())
    if TradingAccount.objects.filter(owner=owner, login=login, server=server).exists():
        raise Conflict(f"Account {login} on {server} is already connected.", code="duplicate_account")
    gateway_kind = gateway_kind or default_gateway_kind(server)
    info = check_credentials(login=login, password=password, server=server, gateway_kind=gateway_kind)
    try:
        with transaction.atomic():
            account = TradingAccount.objects.create(
                owner=owner,
                login=login,
                server=server,
                category=category,
                name=name or info.name or str(login),
                gateway_kind=gateway_kind,
                password_encrypted=encrypt(password),
                broker=info.company,
                currency=info.currency or "USD",
                leverage=info.leverage,
                is_hedging=info.margin_mode == gw.MarginMode.RETAIL_HEDGING,
                balance=info.balance,
                credit=info.credit,
                equity=info.equity,
                margin=info.margin,
                margin_free=info.margin_free,
                margin_level=info.margin_level,
                floating_profit=info.profit,
            )
    except IntegrityError:
        raise Conflict(f"Account {login} on {server} is already connected.", code="duplicate_account") from None
    logger.info("account %s (%s@%s) connected by user %s", account.pk, login, server, owner.pk)
    if sync_now:
        _sync_after_commit(account, trigger="created")
    return account


def trading_account_update(*, account: TradingAccount, password: str | None = None, **fields) -> TradingAccount:
    """Edit name, category, active flag; a new password is checked through the gateway first."""
    allowed = {"name", "category", "is_active"}
    unknown = set(fields) - allowed
    if unknown:
        raise ServiceError(f"These fields cannot be changed: {', '.join(sorted(unknown))}")
    if fields.get("is_active") and not account.is_active:
        from entitlements.gates import require_limit

        active = TradingAccount.objects.filter(owner=account.owner, is_active=True).count()
        require_limit(account.owner, "accounts", active)
    for key, value in fields.items():
        setattr(account, key, value)
    update_fields = [*fields, "updated_at"]
    if password:
        check_credentials(
            login=account.login, password=password, server=account.server, gateway_kind=account.gateway_kind
        )
        account.password_encrypted = encrypt(password)
        account.sync_status = SyncStatus.PENDING
        account.consecutive_errors = 0
        account.last_error = ""
        account.paused_at = None
        update_fields += ["password_encrypted", "sync_status", "consecutive_errors", "last_error", "paused_at"]
    account.save(update_fields=update_fields)
    if password:
        _sync_after_commit(account, trigger="password")
    return account


def trading_account_delete(*, account: TradingAccount) -> None:
    account.delete()


def trading_account_resume(*, account: TradingAccount, sync_now: bool = True) -> TradingAccount:
    """Un-pause an account that stopped after repeated errors, and sync it."""
    TradingAccount.objects.filter(pk=account.pk).update(
        sync_status=SyncStatus.PENDING, consecutive_errors=0, paused_at=None, last_error=""
    )
    account.refresh_from_db()
    if sync_now:
        _sync_after_commit(account, trigger="resume")
    return account


def trading_account_sync_now(*, account: TradingAccount, trigger: str = "api") -> None:
    if not account.is_active:
        raise ServiceError("This account is deactivated; activate it before syncing.", code="inactive")
    if account.sync_status == SyncStatus.PAUSED:
        raise ServiceError(
            "Syncing is paused after repeated errors; resume the account first.", code="paused", status_code=409
        )
    _sync_after_commit(account, trigger=trigger)


def _sync_after_commit(account: TradingAccount, *, trigger: str) -> None:
    from mt5bridge.tasks import sync_enqueue

    transaction.on_commit(lambda: sync_enqueue(account, trigger=trigger))
