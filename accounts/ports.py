"""Ports: what accounts asks of the layers above it, filled in by those layers at start-up.

accounts is the bottom app (docs/architecture.md): it imports no other app. Connecting an MT5 account
needs a login through MetaTrader 5 (the MT5 bridge) and room in the owner's plan (entitlements); both
live above accounts, so the app that owns each fills its slot here from its ``AppConfig.ready()``:

- `provide_mt5` (mt5bridge): check credentials by logging in, queue a sync;
- `provide_account_limit` (entitlements): refuse one account more than the owner's plan allows;
- `provide_ea_last_beats` (mt5bridge): when each account's EA last sent a heartbeat (accounts.freshness);
- `provide_history` (entitlements): how far back a viewer may read an owner's deal history, and which parts of
  the statistics the owner's plan shows (advanced analytics);
- `provide_support_panel` (any app above): a read-only panel of one account for the support agent's account 360
  page (copy trading fills "copy": links both ways, recent copy failures, rule hits), so the page can show an
  app's rows without importing that app;
- `provide_personal_data` (any app above): its section of a person's data export and its part of an account
  deletion (docs/privacy.md).

A slot nobody filled: using the MT5 one raises ``ImproperlyConfigured`` (an account cannot be checked
without MT5); the account limit then allows everything (no plans, no limit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from django.core.exceptions import ImproperlyConfigured

from config.errors import ServiceError

if TYPE_CHECKING:
    from .models import TradingAccount, User


class CredentialsRefused(ServiceError):
    code = "credentials_refused"


class GatewayDown(ServiceError):
    status_code = 502
    code = "mt5_unreachable"


@dataclass(frozen=True)
class AccountLogin:
    """What a successful login tells about an account (no secret in it)."""

    name: str
    company: str
    currency: str
    leverage: int
    is_hedging: bool
    figures: dict[str, Decimal | None]  # keyed as accounts.figures.FIGURES
    # False when MT5 says the session cannot trade (an investor password); None when the gateway does not tell.
    trade_allowed: bool | None = None


class MT5Access(Protocol):
    def login(self, *, login: int, password: str, server: str, gateway_kind: str) -> AccountLogin:
        """Log in to ``server``. Raises `CredentialsRefused`, `GatewayDown` or another ``ServiceError`` whose
        message names the server and login, never the password."""

    def sync_request(self, account: TradingAccount, *, trigger: str) -> None:
        """Queue a sync of ``account`` now (called once the transaction that asked for it has committed)."""


#: ``check(owner, active=n)`` raises a ``ServiceError`` when ``owner``, with ``n`` active accounts, may not
#: have one more.
AccountLimit = Callable[..., None]

#: ``start(owner, viewer=None)``: the oldest deal time ``viewer`` may read of ``owner``'s accounts (None: all);
#: ``owner`` is a user or a user id.
HistoryStart = Callable[..., "datetime | None"]
#: ``view(statistics, owner, viewer=None)``: the statistics payload as ``owner``'s plan shows it to ``viewer``.
AnalyticsView = Callable[..., dict]

_mt5: MT5Access | None = None
_account_limit: AccountLimit | None = None
_history_start: HistoryStart | None = None
_analytics_view: AnalyticsView | None = None


def provide_mt5(access: MT5Access) -> None:
    global _mt5
    _mt5 = access


def provide_account_limit(check: AccountLimit) -> None:
    global _account_limit
    _account_limit = check


def mt5() -> MT5Access:
    if _mt5 is None:
        raise ImproperlyConfigured("No MT5 access is installed: add mt5bridge to INSTALLED_APPS.")
    return _mt5


def account_limit_check(owner: User, *, active: int) -> None:
    if _account_limit is not None:
        _account_limit(owner, active=active)


def provide_history(start: HistoryStart, analytics: AnalyticsView) -> None:
    global _history_start, _analytics_view
    _history_start, _analytics_view = start, analytics


def history_start(owner: User | int, *, viewer=None) -> datetime | None:
    """The one history window of every read (deals list, analytics, statement import); None: no window."""
    return None if _history_start is None else _history_start(owner, viewer=viewer)


def within_history(deals, owner: User | int, *, viewer=None):
    """``deals`` (a Deal queryset) narrowed to the history window."""
    start = history_start(owner, viewer=viewer)
    return deals if start is None else deals.filter(time__gte=start)


def analytics_view(statistics: dict, owner: User | int, *, viewer=None) -> dict:
    return statistics if _analytics_view is None else _analytics_view(statistics, owner, viewer=viewer)


#: ``build(account)``: a dict of plain values (and model rows) about ``account`` for the support agent's page.
SupportPanel = Callable[["TradingAccount"], dict]
_support_panels: dict[str, SupportPanel] = {}


def provide_support_panel(name: str, build: SupportPanel) -> None:
    """Register (or replace) the panel ``name``; the app that owns the rows calls it from ``ready()``."""
    _support_panels[name] = build


def support_panels(account: TradingAccount) -> dict[str, dict]:
    """Every registered panel of ``account``, by name (an app not installed simply has no panel).

    The caller has already checked the viewer may see the account (the account 360 page's capability)."""
    return {name: build(account) for name, build in _support_panels.items()}


#: ``last_beats(account_ids)``: {str(account id): when its EA last beat} for the accounts whose EA ever beat.
EALastBeats = Callable[[list], "dict[str, datetime]"]
_ea_last_beats: EALastBeats | None = None


def provide_ea_last_beats(read: EALastBeats) -> None:
    global _ea_last_beats
    _ea_last_beats = read


def ea_last_beats(account_ids) -> dict[str, datetime]:
    """When each account's EA last beat (no EA, or no bridge installed: missing from the answer)."""
    return {} if _ea_last_beats is None or not account_ids else _ea_last_beats(list(account_ids))


#: ``export(user)``: a JSON-ready section of the person's data an app above holds (copy links, bonuses, plan...).
PersonalDataExport = Callable[["User"], "dict | list"]
#: ``erase(user, pseudonym)``: erase what the app holds about the person, keeping (pseudonymised) what law requires.
PersonalDataErase = Callable[["User", str], None]
_personal_data: dict[str, tuple[PersonalDataExport, PersonalDataErase | None]] = {}


def provide_personal_data(name: str, export: PersonalDataExport, erase: PersonalDataErase | None = None) -> None:
    """Register (or replace) an app's section of the data export and its part of an account deletion
    (docs/privacy.md); the app that owns the rows calls it from ``ready()``."""
    _personal_data[name] = (export, erase)


def personal_data_sections(user: User) -> dict:
    """Every registered section of ``user``'s data, by name."""
    return {name: export(user) for name, (export, _erase) in sorted(_personal_data.items())}


def personal_data_erase(user: User, pseudonym: str) -> list[str]:
    """Run every registered erase step for ``user`` (inside the caller's transaction); the names that ran."""
    done = []
    for name, (_export, erase) in sorted(_personal_data.items()):
        if erase is not None:
            erase(user, pseudonym)
            done.append(name)
    return done


_marketing_basis: Callable[[], str] | None = None


def provide_marketing_basis(read: Callable[[], str]) -> None:
    """The marketing integration says on which legal basis it pushes people ("consent" or "contract")."""
    global _marketing_basis
    _marketing_basis = read


def marketing_basis() -> str:
    """The legal basis of marketing sync, shown next to a person's consent ("consent" when none is installed)."""
    return "consent" if _marketing_basis is None else _marketing_basis()
