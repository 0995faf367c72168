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
from .choices import OwnershipProof, PasswordKind, SyncStatus
from .models import TradingAccount, User
from .ports import AccountLogin
from .vault import encrypt
from .verification import require_verified_email

logger = logging.getLogger(__name__)


def check_credentials(*, login: int, password: str, server: str, gateway_kind: str) -> AccountLogin:
    """Log in through MT5; its refusals come back as clear, password-free errors (`accounts.ports`)."""
    return ports.mt5().login(login=login, password=password, server=server, gateway_kind=gateway_kind)


class OwnershipNotShown(ServiceError):
    code = "ownership_not_shown"


def _same_name(typed: str, reported: str) -> bool:
    return " ".join(typed.split()).casefold() == " ".join((reported or "").split()).casefold()


def ownership_check(info: AccountLogin, *, password_kind: str, holder_name: str = "", currency: str = "") -> str:
    """How the login shows the account is the trader's (an `OwnershipProof`), else OwnershipNotShown.

    A password MT5 lets trade proves it: only the holder has it. An investor (read-only) password is often handed
    out (signal pages, competitions), so for it the holder's name and the account currency the trader typed must
    match what MT5 reports for the login. What MT5 says about the session wins over what was picked: a login it
    lets trade is a trading login, one it says cannot trade an investor login. The message never says what MT5
    reported.
    """
    if info.trade_allowed is True or (info.trade_allowed is None and password_kind != PasswordKind.INVESTOR):
        return OwnershipProof.TRADING_LOGIN
    holder_name, currency = (holder_name or "").strip(), (currency or "").strip()
    missing = [name for name, value in (("holder_name", holder_name), ("currency", currency)) if not value]
    if missing:
        raise OwnershipNotShown(
            "This is an investor (read-only) password: to show the account is yours, type the account holder's "
            "name and the account currency exactly as your MT5 terminal shows them (Navigator → Accounts).",
            code="ownership_details_required",
            details={"fields": missing},
        )
    mismatched = []
    if not _same_name(holder_name, info.name):
        mismatched.append("holder_name")
    if currency.upper() != (info.currency or "").strip().upper():
        mismatched.append("currency")
    if mismatched:
        labels = " and ".join({"holder_name": "holder's name", "currency": "currency"}[f] for f in mismatched)
        verb = "do" if len(mismatched) > 1 else "does"
        raise OwnershipNotShown(
            f"The account {labels} you typed {verb} not match this MT5 account, so it cannot be connected with an "
            "investor password. Check them in your terminal, or connect it with the master password.",
            code="ownership_mismatch",
            details={"fields": mismatched},
        )
    return OwnershipProof.INVESTOR_DETAILS


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
    password_kind: str = PasswordKind.MASTER,
    holder_name: str = "",
    currency: str = "",
    added_by_staff: bool = False,
) -> TradingAccount:
    """Connect an MT5 account. The owner's email is confirmed, MT5 accepts the credentials and the login shows the
    account is theirs (`ownership_check`) before anything is stored. Staff adding an account in the admin vouch
    for the owner themselves (``added_by_staff``): MT5 must still accept the credentials."""
    if password_kind not in PasswordKind.values:
        raise ServiceError(f"Unknown password kind {password_kind!r}.", code="invalid")
    if not added_by_staff:
        require_verified_email(owner)
    ports.account_limit_check(owner, active=TradingAccount.objects.filter(owner=owner, is_active=True).count())
    if TradingAccount.objects.filter(owner=owner, login=login, server=server).exists():
        raise Conflict(f"Account {login} on {server} is already connected.", code="duplicate_account")
    gateway_kind = gateway_kind or default_gateway_kind(server)
    info = check_credentials(login=login, password=password, server=server, gateway_kind=gateway_kind)
    if added_by_staff:
        proof = OwnershipProof.STAFF
        if info.trade_allowed is False:
            password_kind = PasswordKind.INVESTOR
    else:
        proof = ownership_check(info, password_kind=password_kind, holder_name=holder_name, currency=currency)
        password_kind = PasswordKind.INVESTOR if proof == OwnershipProof.INVESTOR_DETAILS else PasswordKind.MASTER
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
                password_kind=password_kind,
                ownership_proof=proof,
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
