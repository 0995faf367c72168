"""Plain values that cross the MT5 boundary: constants, dataclasses and errors."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

# --- Constants (numeric values of the MetaTrader5 package; see docs/mt5-gateways.md) ---


class OrderType(enum.IntEnum):
    BUY = 0
    SELL = 1
    BUY_LIMIT = 2
    SELL_LIMIT = 3
    BUY_STOP = 4
    SELL_STOP = 5
    BUY_STOP_LIMIT = 6
    SELL_STOP_LIMIT = 7
    CLOSE_BY = 8


class OrderFilling(enum.IntEnum):
    """ORDER_FILLING_* (a request's ``type_filling``); a symbol's ``filling_mode`` is a bitmask on another scale."""

    FOK = 0
    IOC = 1
    RETURN = 2
    BOC = 3


class OrderTime(enum.IntEnum):
    """ORDER_TIME_* (a pending order's ``type_time``)."""

    GTC = 0
    DAY = 1
    SPECIFIED = 2
    SPECIFIED_DAY = 3


class OrderState(enum.IntEnum):
    STARTED = 0
    PLACED = 1
    CANCELED = 2
    PARTIAL = 3
    FILLED = 4
    REJECTED = 5
    EXPIRED = 6
    REQUEST_ADD = 7
    REQUEST_MODIFY = 8
    REQUEST_CANCEL = 9


class TradeAction(enum.IntEnum):
    DEAL = 1
    PENDING = 5
    SLTP = 6
    MODIFY = 7
    REMOVE = 8
    CLOSE_BY = 10


class PositionType(enum.IntEnum):
    BUY = 0
    SELL = 1


class DealType(enum.IntEnum):
    BUY = 0
    SELL = 1
    BALANCE = 2
    CREDIT = 3
    CHARGE = 4
    CORRECTION = 5
    BONUS = 6
    COMMISSION = 7
    COMMISSION_DAILY = 8
    COMMISSION_MONTHLY = 9
    COMMISSION_AGENT_DAILY = 10
    COMMISSION_AGENT_MONTHLY = 11
    INTEREST = 12
    BUY_CANCELED = 13
    SELL_CANCELED = 14
    DIVIDEND = 15
    DIVIDEND_FRANKED = 16
    TAX = 17


class DealEntry(enum.IntEnum):
    IN = 0
    OUT = 1
    INOUT = 2
    OUT_BY = 3


class DealReason(enum.IntEnum):
    CLIENT = 0
    MOBILE = 1
    WEB = 2
    EXPERT = 3
    SL = 4
    TP = 5
    SO = 6
    ROLLOVER = 7
    VMARGIN = 8
    SPLIT = 9


class MarginMode(enum.IntEnum):
    RETAIL_NETTING = 0
    EXCHANGE = 1
    RETAIL_HEDGING = 2


class AccountTradeMode(enum.IntEnum):
    DEMO = 0
    CONTEST = 1
    REAL = 2


class Retcode(enum.IntEnum):
    REQUOTE = 10004
    REJECT = 10006
    CANCEL = 10007
    PLACED = 10008
    DONE = 10009
    DONE_PARTIAL = 10010
    ERROR = 10011
    TIMEOUT = 10012
    INVALID = 10013
    INVALID_VOLUME = 10014
    INVALID_PRICE = 10015
    INVALID_STOPS = 10016
    TRADE_DISABLED = 10017
    MARKET_CLOSED = 10018
    NO_MONEY = 10019
    PRICE_CHANGED = 10020
    PRICE_OFF = 10021
    INVALID_EXPIRATION = 10022
    ORDER_CHANGED = 10023
    TOO_MANY_REQUESTS = 10024
    NO_CHANGES = 10025
    SERVER_DISABLES_AT = 10026
    CLIENT_DISABLES_AT = 10027
    LOCKED = 10028
    FROZEN = 10029
    INVALID_FILL = 10030
    CONNECTION = 10031
    ONLY_REAL = 10032
    LIMIT_ORDERS = 10033
    LIMIT_VOLUME = 10034
    INVALID_ORDER = 10035
    POSITION_CLOSED = 10036
    INVALID_CLOSE_VOLUME = 10038
    CLOSE_ORDER_EXIST = 10039
    LIMIT_POSITIONS = 10040
    REJECT_CANCEL = 10041
    LONG_ONLY = 10042
    SHORT_ONLY = 10043
    CLOSE_ONLY = 10044
    FIFO_CLOSE = 10045


SUCCESS_RETCODES = frozenset({Retcode.DONE, Retcode.PLACED, Retcode.DONE_PARTIAL})


# --- Errors ---


class GatewayError(Exception):
    """Something went wrong talking to MT5. The message is safe to show (no secrets)."""


class GatewayUnavailable(GatewayError):
    """The server, bridge or terminal could not be reached, or timed out. Worth retrying."""


class AuthenticationFailed(GatewayError):
    """The login/password/server were refused. Not worth retrying with the same values."""


class NotFound(GatewayError):
    """The login, symbol, ticket or group does not exist on the server."""


# --- Values ---


@dataclass(frozen=True)
class Credentials:
    login: int
    password: str = field(repr=False)
    server: str

    def __str__(self) -> str:  # never prints the password
        return f"{self.login}@{self.server}"


@dataclass(frozen=True)
class AccountInfo:
    login: int
    server: str
    name: str
    company: str
    currency: str
    leverage: int
    balance: Decimal
    credit: Decimal
    equity: Decimal
    margin: Decimal
    margin_free: Decimal
    margin_level: Decimal | None  # percent; None when no margin is used
    profit: Decimal  # floating P/L of open positions
    # Enum fields hold the int of a code newer than the enum knows (terminal_rows.enum_or_int).
    margin_mode: MarginMode | int = MarginMode.RETAIL_HEDGING
    trade_mode: AccountTradeMode | int = AccountTradeMode.DEMO
    margin_so_call: Decimal = Decimal("100")
    margin_so_so: Decimal = Decimal("50")
    # False: the session cannot trade (logged in with the investor password); None: the gateway does not tell.
    trade_allowed: bool | None = None


@dataclass(frozen=True)
class Position:
    ticket: int
    symbol: str
    type: PositionType | int
    volume: Decimal
    price_open: Decimal
    price_current: Decimal
    sl: Decimal
    tp: Decimal
    swap: Decimal
    profit: Decimal
    magic: int
    comment: str
    time: datetime  # UTC, aware
    time_update: datetime
    identifier: int


@dataclass(frozen=True)
class PendingOrder:
    ticket: int
    symbol: str
    type: OrderType | int
    volume_initial: Decimal
    volume_current: Decimal
    price_open: Decimal
    price_current: Decimal
    price_stoplimit: Decimal
    sl: Decimal
    tp: Decimal
    magic: int
    comment: str
    time_setup: datetime
    time_expiration: datetime | None
    type_time: int = 0
    state: int = 1  # ORDER_STATE_PLACED


@dataclass(frozen=True)
class Deal:
    ticket: int
    order: int
    time: datetime  # UTC, aware, millisecond precision
    type: DealType | int
    entry: DealEntry | int
    magic: int
    position_id: int
    reason: int
    volume: Decimal
    price: Decimal
    commission: Decimal
    swap: Decimal
    profit: Decimal
    fee: Decimal
    symbol: str
    comment: str
    external_id: str = ""


@dataclass(frozen=True)
class SymbolInfo:
    name: str
    path: str  # e.g. "Forex\\Majors\\EURUSD.raw"
    description: str
    digits: int
    point: Decimal
    contract_size: Decimal
    volume_min: Decimal
    volume_step: Decimal
    volume_max: Decimal
    currency_base: str = ""
    currency_profit: str = ""
    currency_margin: str = ""
    trade_stops_level: int = 0  # points


@dataclass(frozen=True)
class Tick:
    symbol: str
    time: datetime
    bid: Decimal
    ask: Decimal
    last: Decimal = Decimal("0")


@dataclass(frozen=True)
class OrderRequest:
    """One trade request, the same fields as MT5's TradeRequest (prices as Decimal)."""

    action: TradeAction
    symbol: str = ""
    volume: Decimal = Decimal("0")
    type: OrderType = OrderType.BUY
    price: Decimal = Decimal("0")  # 0 = market price for DEAL
    stoplimit: Decimal = Decimal("0")
    sl: Decimal = Decimal("0")
    tp: Decimal = Decimal("0")
    deviation: int = 10  # points
    magic: int = 0
    comment: str = ""  # MT5 keeps at most 31 characters
    position: int = 0  # ticket of the position to close / modify
    position_by: int = 0
    order: int = 0  # ticket of the pending order to modify / remove
    type_time: int = 0
    expiration: datetime | None = None

    @classmethod
    def closing(cls, position: Position, *, volume: Decimal | None = None, **fields) -> OrderRequest:
        """The market deal that closes ``position`` (all of it, or ``volume``): the opposite side, its ticket."""
        return cls(
            action=TradeAction.DEAL,
            symbol=position.symbol,
            volume=position.volume if volume is None else volume,
            type=OrderType.SELL if position.type == PositionType.BUY else OrderType.BUY,
            position=position.ticket,
            **fields,
        )


@dataclass(frozen=True)
class OrderResult:
    retcode: int
    comment: str = ""
    deal: int = 0
    order: int = 0
    volume: Decimal = Decimal("0")
    price: Decimal = Decimal("0")
    bid: Decimal = Decimal("0")
    ask: Decimal = Decimal("0")
    request_id: int = 0

    @property
    def ok(self) -> bool:
        return self.retcode in SUCCESS_RETCODES


@dataclass(frozen=True)
class BrokerUser:
    """A user record as the broker's manager interface sees it."""

    login: int
    group: str
    name: str = ""
    email: str = ""
    country: str = ""
    lead_source: str = ""
    lead_campaign: str = ""
    agent: int = 0
    leverage: int = 100
    balance: Decimal = Decimal("0")
    credit: Decimal = Decimal("0")
    registration: datetime | None = None
    comment: str = ""


@dataclass(frozen=True)
class BrokerGroup:
    name: str
    currency: str = "USD"
    company: str = ""
    margin_call: Decimal = Decimal("100")
    stop_out: Decimal = Decimal("50")
