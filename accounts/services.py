"""Write paths for trading accounts: add (credentials checked first), edit, delete, resume.

MT5 (the login, the sync queue) and the plan's account limit are reached through `accounts.ports`, which the
apps above fill in at start-up.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction

from config.errors import Conflict, ServiceError

from . import ports
from .choices import SyncStatus
from .models import TradingAccount, User
from .ports import AccountLogin
from .vault import encrypt

logger = logging.getLogger(__name__)


def check_credentials(*, login: int, password: str, server: str, gateway_kind: str) -> AccountLogin:
    """Log in through MT5; its refusals come back as clear, password-free errors (`accounts.ports`)."""
    return ports.mt5().login(login=login, password=password, server=server, gateway_kind=gateway_kind)


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
    ports.account_limit_check(owner, active=TradingAccount.objects.filter(owner=owner, is_active=True).count())
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
                is_hedging=info.is_hedging,
                **info.figures,
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
        active = TradingAccount.objects.filter(owner=account.owner, is_active=True).count()
        ports.account_limit_check(account.owner, active=active)
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
    mt5 = ports.mt5()
    transaction.on_commit(lambda: mt5.sync_request(account, trigger=trigger))
