"""The gateway to the in-process simulated MT5 server (``mt5bridge.simulated``)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from config.caches import Memo
from mt5bridge.groups import group_matcher
from mt5bridge.simulated import bulk, engine, prices, reads, seeding
from mt5bridge.simulated import clock as sim_clock
from mt5bridge.simulated.models import SimAccount, SimGroup
from mt5bridge.simulated.symbols_catalog import DEFAULT_SERVER, find_symbol, get_server

from .types import (
    AccountInfo,
    AuthenticationFailed,
    BrokerGroup,
    BrokerUser,
    Credentials,
    Deal,
    DealType,
    NotFound,
    OrderRequest,
    OrderResult,
    PendingOrder,
    Position,
    SymbolInfo,
    Tick,
)

# deals() settles the account first unless this gateway read it this recently (a sync reads
# the account, then its positions, orders and deals, in a few milliseconds).
_DEALS_SETTLED_WITHIN = 2.0
_AUTH_FAILED = "Terminal: Authorization failed (-6)"

# Passwords already verified in this process, so a sync every few minutes does not pay the key-derivation
# cost each time: keyed by (login, stored hash, digest of the password given), so a changed password (a new
# stored hash) or a different one given is a new key.
VERIFIED: Memo[bool] = Memo("mt5bridge.simulated.verified_passwords", size=50_000)
_VIEWS_LIMIT = 50_000  # a long-lived gateway forgets its account views and starts over past this many


def _digest(password: str, encoded: str) -> bytes:
    return hashlib.sha256(f"{encoded}\x00{password}".encode()).digest()


@dataclass
class _Cached:
    read_at: float
    view: reads.AccountView


class SimulatedGateway:
    """An MT5 server simulated in the database: trader-side and broker-side calls on every server.

    Trader-side calls work for any simulated login (the simulator is a server, not a terminal
    holding one account). ``server`` limits the broker-side calls (users, groups) to one simulated
    server, as a manager connection would be; ``clock`` replaces the simulator's clock (tests).
    """

    kind = "simulated"

    def __init__(self, *, server: str | None = None, clock: Callable[[], datetime] | None = None):
        self.server = server
        self._clock = clock or sim_clock.now
        self._views: dict[int, _Cached] = {}
        self._current_server: str | None = server

    # --- internals ---

    def _now(self) -> datetime:
        return self._clock()

    def _view(self, login: int, fetched: reads.AccountView | None = None) -> reads.AccountView:
        """The account settled at now; positions and orders read earlier are reused while its version holds."""
        base = fetched
        if base is None:
            cached = self._views.get(login)
            if cached is not None and reads.version_of(login) == (cached.view.account.pk, cached.view.account.version):
                base = cached.view
            else:
                base = reads.fetch(login)
        view = reads.settled(base, self._now())
        if len(self._views) >= _VIEWS_LIMIT:
            self._views.clear()
        self._views[login] = _Cached(time.monotonic(), view)
        return view

    # --- trader side ---

    def login(self, credentials: Credentials) -> AccountInfo:
        if get_server(credentials.server) is None:
            raise AuthenticationFailed(_AUTH_FAILED)
        try:
            fetched = reads.fetch(credentials.login)
        except NotFound:
            raise AuthenticationFailed(_AUTH_FAILED) from None
        account = fetched.account
        if account.server != credentials.server:
            raise AuthenticationFailed(_AUTH_FAILED)
        key = (account.login, account.password, _digest(credentials.password, account.password))
        if VERIFIED.peek(key) is None:  # only a password that matched is kept
            if not seeding.password_matches(credentials.password, account.password):
                raise AuthenticationFailed(_AUTH_FAILED)
            VERIFIED.get_or_build(key, lambda: True)
        self._current_server = account.server
        return reads.account_info(self._view(account.login, fetched))

    def account_info(self, login: int) -> AccountInfo:
        return reads.account_info(self._view(login))

    def positions(self, login: int) -> list[Position]:
        return reads.positions(self._view(login))

    def orders(self, login: int) -> list[PendingOrder]:
        return reads.orders(self._view(login))

    def deals(self, login: int, date_from: datetime, date_to: datetime) -> list[Deal]:
        cached = self._views.get(login)
        if cached is None or time.monotonic() - cached.read_at > _DEALS_SETTLED_WITHIN:
            self._view(login)  # settles first, so crossed triggers show up as deals
        return reads.deals(login, date_from, date_to, server=self._views[login].view.account.server)

    def symbols(self, login: int | None = None) -> list[SymbolInfo]:
        if login is not None:
            server = SimAccount.objects.filter(login=login).values_list("server", flat=True).first()
            if server is None:
                raise NotFound(f"login {login} is not on the simulated server")
        else:
            server = self._current_server or DEFAULT_SERVER
        spec_of_server = get_server(server)
        if spec_of_server is None:
            raise NotFound(f"no simulated server {server!r}")
        return [spec.to_info() for spec in spec_of_server.symbols]

    def tick(self, symbol: str) -> Tick:
        spec = find_symbol(symbol, self._current_server)
        if spec is None:
            raise NotFound(f"symbol {symbol!r} is not listed on the simulated servers")
        return prices.tick(spec, self._now())

    def order_send(self, login: int, request: OrderRequest) -> OrderResult:
        return engine.order_send(login, request, self._now())

    # --- broker side ---

    def _groups(self) -> Iterable[SimGroup]:
        groups = SimGroup.objects.select_related("server").order_by("server__name", "name")
        if self.server:
            groups = groups.filter(server__name=self.server)
        return groups

    @staticmethod
    def _user(account: SimAccount) -> BrokerUser:
        return BrokerUser(
            login=account.login,
            group=account.group.name,
            name=account.name,
            email=account.email,
            country=account.country,
            lead_source=account.lead_source,
            lead_campaign=account.lead_campaign,
            agent=account.agent,
            leverage=account.leverage,
            balance=account.balance,
            credit=account.credit,
            registration=account.registration,
            comment=account.comment,
        )

    def users(self, group_mask: str = "*") -> list[BrokerUser]:
        matches = group_matcher(group_mask)
        group_ids = [g.pk for g in self._groups() if matches(g.name)]
        accounts = SimAccount.objects.filter(group_id__in=group_ids).select_related("group").order_by("login")
        return [self._user(a) for a in accounts]

    def user(self, login: int) -> BrokerUser:
        account = SimAccount.objects.select_related("group").filter(login=login).first()
        if account is None or (self.server and account.server != self.server):
            raise NotFound(f"login {login} is not on the simulated server")
        return self._user(account)

    def groups(self) -> list[BrokerGroup]:
        return [
            BrokerGroup(
                name=g.name, currency=g.currency, company=g.company, margin_call=g.margin_call, stop_out=g.stop_out
            )
            for g in self._groups()
        ]

    def accounts_info(self, logins: Sequence[int]) -> dict[int, AccountInfo]:
        return bulk.accounts_info(logins, self._now())

    def balance_operation(
        self, login: int, amount: Decimal, deal_type: DealType, comment: str, *, check_margin: bool = True
    ) -> int:
        return engine.balance_operation(login, amount, deal_type, comment, self._now(), check_margin=check_margin)

    def deals_by_comment(self, login: int, comment: str) -> list[Deal]:
        return reads.deals_by_comment(login, comment)

    def set_leverage(self, login: int, leverage: int) -> None:
        engine.set_leverage(login, leverage, self._now())

    def close_all_positions(self, login: int) -> list[OrderResult]:
        return engine.close_all_positions(login, self._now())
