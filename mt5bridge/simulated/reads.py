"""Read paths of the simulated server: one account's view (account, positions, orders) and its deals.

These run on every sync and in the broker's monitor loops, so on PostgreSQL they use a few
hand-written queries (``sql``: the ORM's per-query overhead is larger than the work here) and build the
gateway's frozen dataclasses without their ``__init__``. Other databases take ORM paths that
return the same values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import DEFAULT_DB_ALIAS, connection

from mt5bridge.gateway.types import (
    AccountInfo,
    AccountTradeMode,
    Deal,
    DealEntry,
    DealType,
    MarginMode,
    NotFound,
    OrderType,
    PendingOrder,
    Position,
    PositionType,
)

from . import accounting, engine, prices, sql, triggers
from .accounting import BUY, SELL, Figures, Valuation
from .book import Book
from .models import SimAccount, SimDeal, SimGroup, SimOrder, SimPosition
from .symbols_catalog import find_symbol, symbol_spec
from .trade_rules import clip_comment, tidy_price, tidy_volume

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ADVANCE_CHECKED_AFTER = timedelta(seconds=60)
_DEAL_TYPES = {int(m): m for m in DealType}
_DEAL_ENTRIES = {int(m): m for m in DealEntry}
MARGIN_MODES = {int(m): m for m in MarginMode}
TRADE_MODES = {int(m): m for m in AccountTradeMode}
_BUY_TYPES = (OrderType.BUY_LIMIT, OrderType.BUY_STOP)


def _fields(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


# trade_allowed is left out: the simulated server has no investor passwords, so it keeps the field's default
# (None: not reported), which the class attribute of the dataclass supplies.
_ACCOUNT_INFO_FIELDS = tuple(name for name in _fields(AccountInfo) if name != "trade_allowed")
_DEAL_FIELDS = sql.DEAL_FIELDS  # the deal reads select these columns in this order


def _build(cls, names: tuple[str, ...], values: Iterable) -> object:
    # A frozen dataclass's __init__ costs a few microseconds per object through object.__setattr__;
    # bulk reads build thousands, so fill the instance dict directly (no __post_init__ to skip).
    obj = object.__new__(cls)
    obj.__dict__.update(zip(names, values, strict=True))
    return obj


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


# --- One account ----------------------------------------------------------------------


@dataclass
class AccountView:
    """An account with its open positions and pending orders, as read at ``now``."""

    account: SimAccount
    positions: list[SimPosition]
    orders: list[SimOrder]
    now: datetime | None = None


def fetch(login: int) -> AccountView:
    """The account, its group, open positions and placed orders, straight from the database."""
    if not _is_postgres():
        try:
            account = SimAccount.objects.select_related("group").get(login=login)
        except SimAccount.DoesNotExist:
            raise NotFound(f"login {login} is not on the simulated server") from None
        positions = list(SimPosition.objects.filter(account_id=login).order_by("time", "ticket"))
        orders = []
        if account.orders_open:
            orders = list(
                SimOrder.objects.filter(account_id=login, state=SimOrder.PLACED).order_by("time_setup", "ticket")
            )
        return AccountView(account, positions, orders)
    rows = sql.account_rows(login)
    if not rows:
        raise NotFound(f"login {login} is not on the simulated server")
    names = sql.row_names()
    n_account, n_group = len(names.account), len(names.group)
    first = rows[0]
    account = SimAccount.from_db(DEFAULT_DB_ALIAS, names.account, first[:n_account])
    account.group = SimGroup.from_db(DEFAULT_DB_ALIAS, names.group, first[n_account : n_account + n_group])
    positions = [
        SimPosition.from_db(DEFAULT_DB_ALIAS, names.position, row[n_account + n_group :])
        for row in rows
        if row[n_account + n_group] is not None
    ]
    orders = []
    if account.orders_open:
        orders = [
            SimOrder.from_db(DEFAULT_DB_ALIAS, names.order, row)
            for row in sql.placed_order_rows(login, SimOrder.PLACED)
        ]
    return AccountView(account, positions, orders)


def version_of(login: int) -> tuple[int, int] | None:
    """(row id, version) of the account: whether a copy read earlier is still current."""
    if _is_postgres():
        return sql.account_version(login)
    return SimAccount.objects.filter(login=login).values_list("id", "version").first()


def settled(view: AccountView, now: datetime) -> AccountView:
    """``view`` at ``now``: settled first when a trigger crossed or stop-out is due."""
    account = view.account
    book = Book(account, list(view.positions), list(view.orders), now)
    if triggers.needs_settling(book):
        book = engine.settle(account.login, now)
        return AccountView(book.account, book.positions, book.orders, now)
    has_triggers = view.orders or any(p.sl or p.tp for p in view.positions)
    if has_triggers and now - account.checked_at > _ADVANCE_CHECKED_AFTER:
        # Nothing crossed up to now: later readers need not replay this stretch again.
        if SimAccount.objects.filter(pk=account.pk, checked_at=account.checked_at).update(checked_at=now):
            account.checked_at = now
            account.version += 1  # the database trigger bumped it
    return AccountView(account, view.positions, view.orders, now)


def load(login: int, now: datetime) -> AccountView:
    return settled(fetch(login), now)


def build_account_info(*values) -> AccountInfo:
    """An AccountInfo from its field values in order (margin mode and trade mode as ints)."""
    values = list(values)
    values[13] = MARGIN_MODES[values[13]]
    values[14] = TRADE_MODES[values[14]]
    return _build(AccountInfo, _ACCOUNT_INFO_FIELDS, values)


def _figures(view: AccountView, valuation: Valuation) -> Figures:
    a = view.account
    rows = (
        (
            symbol_spec(a.server, p.symbol),
            p.type,
            p.volume,
            p.price_open,
            p.swap_accrued,
            prices.epoch_second(p.swap_since),
        )
        for p in view.positions
    )
    return accounting.figures(a.balance, a.credit, a.leverage, rows, valuation)


def account_info(view: AccountView) -> AccountInfo:
    a, g = view.account, view.account.group
    f = _figures(view, Valuation(prices.epoch_second(view.now)))
    return build_account_info(
        a.login, a.server, a.name, g.company, a.currency, a.leverage, f.balance, f.credit, f.equity, f.margin,
        f.margin_free, f.margin_level, f.profit, a.margin_mode, a.trade_mode, g.margin_call, g.stop_out,
    )  # fmt: skip


def positions(view: AccountView) -> list[Position]:
    t = prices.epoch_second(view.now)
    valuation = Valuation(t)
    server = view.account.server
    result = []
    for p in view.positions:
        spec = symbol_spec(server, p.symbol)
        price = valuation.close_price(spec, p.type)
        swap = accounting.position_swap(spec, p.type, p.volume, p.swap_accrued, prices.epoch_second(p.swap_since), t)
        result.append(
            Position(
                ticket=p.ticket,
                symbol=p.symbol,
                type=PositionType(p.type),
                volume=tidy_volume(p.volume),
                price_open=tidy_price(p.price_open, spec.digits),
                price_current=price,
                sl=tidy_price(p.sl, spec.digits),
                tp=tidy_price(p.tp, spec.digits),
                swap=swap,
                profit=valuation.profit(spec, p.type, p.volume, p.price_open, price),
                magic=p.magic,
                comment=p.comment,
                time=p.time,
                time_update=p.time_update,
                identifier=p.identifier,
            )
        )
    return result


def orders(view: AccountView) -> list[PendingOrder]:
    valuation = Valuation(prices.epoch_second(view.now))
    server = view.account.server
    result = []
    for o in view.orders:
        spec = symbol_spec(server, o.symbol)
        side = BUY if o.type in _BUY_TYPES else SELL
        result.append(
            PendingOrder(
                ticket=o.ticket,
                symbol=o.symbol,
                type=OrderType(o.type),
                volume_initial=tidy_volume(o.volume_initial),
                volume_current=tidy_volume(o.volume_current),
                price_open=tidy_price(o.price_open, spec.digits),
                price_current=valuation.open_price(spec, side),
                price_stoplimit=tidy_price(o.price_stoplimit, spec.digits),
                sl=tidy_price(o.sl, spec.digits),
                tp=tidy_price(o.tp, spec.digits),
                magic=o.magic,
                comment=o.comment,
                time_setup=o.time_setup,
                time_expiration=o.time_expiration,
                type_time=o.type_time,
                state=o.state,
            )
        )
    return result


# --- Deals ----------------------------------------------------------------------------


def _deal_objects(rows: Iterable[tuple], server: str | None) -> list[Deal]:
    quanta: dict[str, Decimal] = {}
    cent = Decimal("0.01")
    result = []
    for row in rows:
        (ticket, order, time, type_, entry, magic, position_id, reason, volume, price,
         commission, swap, profit, fee, symbol, comment, external_id) = row  # fmt: skip
        if isinstance(time, int):
            time = _EPOCH + timedelta(milliseconds=time)
        if symbol:
            quantum = quanta.get(symbol)
            if quantum is None:
                spec = find_symbol(symbol, server)
                quantum = quanta[symbol] = Decimal(1).scaleb(-(spec.digits if spec else 5))
            rounded = price.quantize(quantum)  # shown with the symbol's digits (see trade_rules.tidy_price)
            price = rounded if rounded == price else price.normalize()
        else:
            price = Decimal(0)
        rounded = volume.quantize(cent)
        result.append(
            _build(
                Deal,
                _DEAL_FIELDS,
                (
                    ticket,
                    order,
                    time,
                    _DEAL_TYPES[type_],
                    _DEAL_ENTRIES[entry],
                    magic,
                    position_id,
                    reason,
                    rounded if rounded == volume else volume.normalize(),
                    price,
                    commission,
                    swap,
                    profit,
                    fee,
                    symbol,
                    comment,
                    external_id,
                ),
            )  # fmt: skip
        )
    return result


def _raise_if_unknown(login: int) -> None:
    if not SimAccount.objects.filter(login=login).exists():
        raise NotFound(f"login {login} is not on the simulated server")


def deals(login: int, date_from: datetime, date_to: datetime, *, server: str | None = None) -> list[Deal]:
    """Deals of ``login`` with ``date_from <= time <= date_to``, oldest first."""
    if _is_postgres():
        rows = sql.deal_rows_between(login, date_from, date_to)
    else:
        rows = (
            SimDeal.objects.filter(account_id=login, time__gte=date_from, time__lte=date_to)
            .order_by("time", "ticket")
            .values_list(*_DEAL_FIELDS)
        )
    result = _deal_objects(rows, server)
    if not result:
        _raise_if_unknown(login)
    return result


def deals_by_comment(login: int, comment: str) -> list[Deal]:
    """Deals whose stored comment (cut to 31 characters, as MT5 keeps it) equals ``comment``'s."""
    comment = clip_comment(comment)
    if _is_postgres():
        rows = sql.deal_rows_with_comment(login, comment)
    else:
        rows = SimDeal.objects.filter(account_id=login, comment=comment).order_by("time", "ticket")
        rows = rows.values_list(*_DEAL_FIELDS)
    result = _deal_objects(rows, None)
    if not result:
        _raise_if_unknown(login)
    return result
