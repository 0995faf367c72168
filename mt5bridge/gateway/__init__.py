"""The one way into MetaTrader 5: a typed interface and a factory that picks the implementation.

Apps import from here only (``from mt5bridge.gateway import get_gateway, Credentials``);
the implementations (``simulated``, ``terminal``, ``manager``) are chosen by configuration.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from django.conf import settings

from .types import (  # noqa: F401  (re-exported)
    SUCCESS_RETCODES,
    AccountInfo,
    AccountTradeMode,
    AuthenticationFailed,
    BrokerGroup,
    BrokerUser,
    Credentials,
    Deal,
    DealEntry,
    DealReason,
    DealType,
    GatewayError,
    GatewayUnavailable,
    MarginMode,
    NotFound,
    OrderFilling,
    OrderRequest,
    OrderResult,
    OrderState,
    OrderTime,
    OrderType,
    PendingOrder,
    Position,
    PositionType,
    Retcode,
    SymbolInfo,
    Tick,
    TradeAction,
)

GATEWAY_KINDS = ("simulated", "terminal", "manager")


@runtime_checkable
class MT5Gateway(Protocol):
    """What the apps need from an MT5 server.

    Trader-side calls (``account_info`` ... ``order_send``) act on ``login`` and need a prior
    successful ``login(credentials)`` on the same gateway object: a terminal holds one
    account at a time, so its implementation raises ``GatewayError`` when ``login`` is not
    the account it is logged into. Broker-side calls (``users`` ... ``close_all_positions``)
    use the gateway's manager rights and need no trader password.

    Every call raises ``GatewayUnavailable`` when the server cannot be reached,
    ``AuthenticationFailed`` for refused credentials and ``NotFound`` for unknown logins,
    symbols or tickets. Trade requests never raise for a refused trade: the refusal is the
    ``retcode`` of the returned ``OrderResult``.
    """

    kind: str

    # --- trader side ---
    def login(self, credentials: Credentials) -> AccountInfo: ...

    def account_info(self, login: int) -> AccountInfo: ...

    def positions(self, login: int) -> list[Position]: ...

    def orders(self, login: int) -> list[PendingOrder]: ...

    def deals(self, login: int, date_from: datetime, date_to: datetime) -> list[Deal]: ...

    def symbols(self, login: int | None = None) -> list[SymbolInfo]: ...

    def tick(self, symbol: str) -> Tick: ...

    def order_send(self, login: int, request: OrderRequest) -> OrderResult: ...

    # --- broker side (manager rights) ---
    def users(self, group_mask: str = "*") -> list[BrokerUser]: ...

    def user(self, login: int) -> BrokerUser: ...

    def groups(self) -> list[BrokerGroup]: ...

    def accounts_info(self, logins: Sequence[int]) -> dict[int, AccountInfo]: ...

    def balance_operation(
        self, login: int, amount: Decimal, deal_type: DealType, comment: str, *, check_margin: bool = True
    ) -> int:
        """Post a balance/credit/bonus/charge/correction deal and return its ticket.

        ``check_margin`` (on by default, as on the server) refuses with retcode 10019 an amount
        taken off that the free margin does not cover; turning it off lets a broker take back
        credit from an account in drawdown. Credit or balance are never taken below zero except
        by a correction (deal type 5), which is never margin-checked.
        """
        ...

    def deals_by_comment(self, login: int, comment: str) -> list[Deal]: ...

    def set_leverage(self, login: int, leverage: int) -> None: ...

    def close_all_positions(self, login: int) -> list[OrderResult]: ...


def get_gateway(kind: str | None = None, *, server: str = "") -> MT5Gateway:
    """Build the gateway for ``kind`` (or the one configured for ``server``, or the default)."""
    # Each implementation is imported only when chosen: the simulated one brings the simulator's models
    # (which need the app registry, and which import this package's types), the terminal one the
    # MetaTrader5 package, which exists on Windows only.
    kind = kind or settings.MT5_SERVER_GATEWAYS.get(server) or settings.MT5_GATEWAY
    if kind == "simulated":
        from .simulated import SimulatedGateway  # noqa: PLC0415  chosen at run time (see above)

        return SimulatedGateway()
    if kind == "manager":
        from .manager import ManagerGateway  # noqa: PLC0415  chosen at run time (see above)

        return ManagerGateway(
            base_url=settings.MT5_MANAGER_URL,
            login=settings.MT5_MANAGER_LOGIN,
            password=settings.MT5_MANAGER_PASSWORD,
            timeout=settings.MT5_MANAGER_TIMEOUT,
            retries=settings.MT5_MANAGER_RETRIES,
            server=server,
        )
    if kind == "terminal":
        from .terminal import TerminalGateway, load_terminal_module  # noqa: PLC0415  chosen at run time

        return TerminalGateway(
            load_terminal_module(settings.MT5_TERMINAL_MODULE),
            path=settings.MT5_TERMINAL_PATH or None,
            timeout_ms=settings.MT5_TERMINAL_TIMEOUT_MS,
        )
    raise GatewayError(f"unknown MT5 gateway kind {kind!r}; expected one of {GATEWAY_KINDS}")
