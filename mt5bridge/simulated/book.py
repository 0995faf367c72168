"""One account's book under lock: its positions, pending orders and deals, changed in memory and written back once.

Fills (open, close, netting) and the margin check live here; what happens on the price path is
``triggers``, what a trade request does is ``trade_requests``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from mt5bridge.gateway.types import DealEntry, NotFound

from . import accounting, prices, sql
from .accounting import BUY, SELL, ZERO, Figures, Valuation, money
from .models import SimAccount, SimDeal, SimOrder, SimPosition
from .symbols_catalog import SymbolSpec, symbol_spec
from .trade_rules import CREDIT_TYPES, PRICE_QUANTUM, clip_comment


def allocate_tickets(server: str, count: int) -> int:
    """Reserve ``count`` consecutive tickets on ``server`` and return the first one."""
    after = sql.tickets_reserve(server, count)
    if after is None:
        raise NotFound(f"server {server!r} is not simulated")
    return after - count


# --- One account's book under lock ----------------------------------------------------


class Book:
    """One account with its open positions and pending orders, changed in memory and written back once."""

    def __init__(self, account: SimAccount, positions: list[SimPosition], orders: list[SimOrder], now: datetime):
        self.account = account
        self.positions = positions
        self.orders = orders
        self.now = now
        self.t = prices.epoch_second(now)
        self.changed = False
        self._deals: list[SimDeal] = []
        self._touched_positions: dict[int, SimPosition] = {}
        self._deleted_positions: list[int] = []
        self._touched_orders: dict[int, SimOrder] = {}
        self._tickets: list[int] = []
        self._valuations: dict[int, Valuation] = {}

    @classmethod
    def lock(cls, login: int, now: datetime) -> Book:
        try:
            account = SimAccount.objects.select_for_update(of=("self",)).select_related("group").get(login=login)
        except SimAccount.DoesNotExist:
            raise NotFound(f"login {login} is not on the simulated server") from None
        positions = list(SimPosition.objects.filter(account_id=login).order_by("time", "ticket"))
        orders = list(SimOrder.objects.filter(account_id=login, state=SimOrder.PLACED).order_by("time_setup", "ticket"))
        return cls(account, positions, orders, now)

    # --- lookups ---

    def spec(self, symbol: str) -> SymbolSpec | None:
        return symbol_spec(self.account.server, symbol)

    def valuation(self, t: int) -> Valuation:
        found = self._valuations.get(t)
        if found is None:
            found = self._valuations[t] = Valuation(t)
        return found

    def position(self, ticket: int) -> SimPosition | None:
        return next((p for p in self.positions if p.ticket == ticket), None)

    def netting_position(self, symbol: str) -> SimPosition | None:
        return next((p for p in self.positions if p.symbol == symbol), None)

    def order(self, ticket: int) -> SimOrder | None:
        return next((o for o in self.orders if o.ticket == ticket), None)

    def ticket(self) -> int:
        if not self._tickets:
            first = allocate_tickets(self.account.server, 4)
            self._tickets = [first + 3, first + 2, first + 1, first]
        return self._tickets.pop()

    def _position_rows(self) -> Iterable[tuple]:
        for p in self.positions:
            yield self.spec(p.symbol), p.type, p.volume, p.price_open, p.swap_accrued, prices.epoch_second(p.swap_since)

    def figures(self, t: int) -> Figures:
        a = self.account
        return accounting.figures(a.balance, a.credit, a.leverage, self._position_rows(), self.valuation(t))

    def swap_of(self, pos: SimPosition, t: int) -> Decimal:
        spec = self.spec(pos.symbol)
        return accounting.position_swap(
            spec, pos.type, pos.volume, pos.swap_accrued, prices.epoch_second(pos.swap_since), t
        )

    def commission(self, spec: SymbolSpec, volume: Decimal) -> Decimal:
        return money(spec.commission_per_lot * volume)

    # --- bookkeeping ---

    def touch_position(self, pos: SimPosition) -> None:
        self._touched_positions[id(pos)] = pos
        self.changed = True

    def remove_position(self, pos: SimPosition) -> None:
        self.positions.remove(pos)
        self._touched_positions.pop(id(pos), None)
        if pos.pk is not None:
            self._deleted_positions.append(pos.pk)
        self.changed = True

    def touch_order(self, order: SimOrder) -> None:
        self._touched_orders[id(order)] = order
        if order.state != SimOrder.PLACED and order in self.orders:
            self.orders.remove(order)
        self.changed = True

    def add_deal(
        self,
        *,
        at: datetime,
        type: int,
        entry: int = DealEntry.IN,
        order: int = 0,
        position_id: int = 0,
        symbol: str = "",
        volume: Decimal = ZERO,
        price: Decimal = ZERO,
        profit: Decimal = ZERO,
        commission: Decimal = ZERO,
        swap: Decimal = ZERO,
        magic: int = 0,
        reason: int = 0,
        comment: str = "",
    ) -> SimDeal:
        deal = SimDeal(
            account_id=self.account.login,
            ticket=self.ticket(),
            order=order,
            time=at.replace(microsecond=at.microsecond // 1000 * 1000),  # MT5 keeps milliseconds
            type=int(type),
            entry=int(entry),
            magic=magic,
            position_id=position_id,
            reason=int(reason),
            volume=volume,
            price=price,
            commission=commission,
            swap=swap,
            profit=profit,
            symbol=symbol,
            comment=clip_comment(comment),
        )
        self._deals.append(deal)
        if type in CREDIT_TYPES:
            self.account.credit += profit
        else:
            self.account.balance += profit + commission + swap
        self.changed = True
        return deal

    def flush(self) -> None:
        """Write every change back; the account row last (its version tells readers something moved)."""
        if self._deals:
            SimDeal.objects.bulk_create(self._deals)
        open_ids = {id(p) for p in self.positions}
        new_positions = []
        for pos in self._touched_positions.values():
            if id(pos) not in open_ids:
                continue
            if pos.pk is None:
                new_positions.append(pos)
            else:
                pos.save(
                    update_fields=[
                        "type", "volume", "price_open", "sl", "tp", "time_update", "swap_accrued", "swap_since",
                    ]
                )  # fmt: skip
        if new_positions:
            SimPosition.objects.bulk_create(new_positions)
        if self._deleted_positions:
            SimPosition.objects.filter(pk__in=self._deleted_positions).delete()
        new_orders = []
        for order in self._touched_orders.values():
            if order.pk is None:
                new_orders.append(order)
            else:
                order.save(
                    update_fields=[
                        "state", "volume_current", "price_open", "sl", "tp", "type_time", "time_update",
                        "time_expiration", "time_done", "position_id",
                    ]
                )  # fmt: skip
        if new_orders:
            SimOrder.objects.bulk_create(new_orders)
        account = self.account
        fields = ["checked_at"]
        if self.now > account.checked_at:
            account.checked_at = self.now
        if self.changed:
            account.version += 1
            account.orders_open = len(self.orders)
            fields += ["balance", "credit", "leverage", "version", "orders_open"]
        account.save(update_fields=fields)
        self._deals, self._touched_positions, self._deleted_positions, self._touched_orders = [], {}, [], {}

    # --- fills ---

    def open_position(
        self,
        spec: SymbolSpec,
        side: int,
        volume: Decimal,
        price: Decimal,
        at: datetime,
        *,
        order: int,
        magic: int,
        comment: str,
        reason: int,
        sl: Decimal = ZERO,
        tp: Decimal = ZERO,
    ) -> SimDeal:
        pos = SimPosition(
            account_id=self.account.login,
            ticket=order,
            identifier=order,
            symbol=spec.name,
            type=side,
            volume=volume,
            price_open=price,
            sl=sl,
            tp=tp,
            magic=magic,
            comment=clip_comment(comment),
            reason=3 if magic else 0,  # POSITION_REASON_EXPERT / _CLIENT
            time=at,
            time_update=at,
            swap_accrued=ZERO,
            swap_since=at,
        )
        self.positions.append(pos)
        self.touch_position(pos)
        return self.add_deal(
            at=at,
            type=side,
            entry=DealEntry.IN,
            order=order,
            position_id=order,
            symbol=spec.name,
            volume=volume,
            price=price,
            commission=self.commission(spec, volume),
            magic=magic,
            reason=reason,
            comment=comment,
        )

    def close_volume(
        self,
        pos: SimPosition,
        volume: Decimal,
        price: Decimal,
        at: datetime,
        *,
        order: int,
        magic: int,
        comment: str,
        reason: int,
        entry: int = DealEntry.OUT,
    ) -> SimDeal:
        """Close ``volume`` of ``pos`` at ``price`` (all of it when ``volume`` is the position's)."""
        spec = self.spec(pos.symbol)
        t = prices.epoch_second(at)
        profit = self.valuation(t).profit(spec, pos.type, volume, pos.price_open, price)
        total_swap = self.swap_of(pos, t)
        if volume >= pos.volume:
            swap = total_swap
            self.remove_position(pos)
        else:
            swap = money(total_swap * volume / pos.volume)
            pos.swap_accrued = total_swap - swap
            pos.swap_since = at
            pos.volume -= volume
            pos.time_update = at
            self.touch_position(pos)
        return self.add_deal(
            at=at,
            type=SELL if pos.type == BUY else BUY,
            entry=entry,
            order=order,
            position_id=pos.identifier,
            symbol=pos.symbol,
            volume=volume,
            price=price,
            profit=profit,
            commission=self.commission(spec, volume),
            swap=swap,
            magic=magic,
            reason=reason,
            comment=comment,
        )

    def netting_fill(
        self,
        spec: SymbolSpec,
        side: int,
        volume: Decimal,
        price: Decimal,
        at: datetime,
        *,
        order: int,
        magic: int,
        comment: str,
        reason: int,
        sl: Decimal = ZERO,
        tp: Decimal = ZERO,
    ) -> SimDeal:
        """A deal on a netting account: opens, adds to, reduces, closes or reverses the symbol's position."""
        pos = self.netting_position(spec.name)
        if pos is None:
            return self.open_position(
                spec, side, volume, price, at, order=order, magic=magic, comment=comment, reason=reason, sl=sl, tp=tp
            )
        if volume <= pos.volume and pos.type != side:
            return self.close_volume(pos, volume, price, at, order=order, magic=magic, comment=comment, reason=reason)
        t = prices.epoch_second(at)
        swap = ZERO
        profit = ZERO
        if pos.type == side:
            entry = DealEntry.IN
            pos.swap_accrued = self.swap_of(pos, t)
            total = pos.volume + volume
            pos.price_open = ((pos.price_open * pos.volume + price * volume) / total).quantize(PRICE_QUANTUM)
            pos.volume = total
            if sl or tp:
                pos.sl, pos.tp = sl, tp
        else:
            # Reversal: the old position is closed in full and the rest opens the other way.
            entry = DealEntry.INOUT
            profit = self.valuation(t).profit(spec, pos.type, pos.volume, pos.price_open, price)
            swap = self.swap_of(pos, t)
            pos.type = side
            pos.volume = volume - pos.volume
            pos.price_open = price
            pos.swap_accrued = ZERO
            pos.sl, pos.tp = sl, tp
        pos.swap_since = at
        pos.time_update = at
        self.touch_position(pos)
        return self.add_deal(
            at=at,
            type=side,
            entry=entry,
            order=order,
            position_id=pos.identifier,
            symbol=spec.name,
            volume=volume,
            price=price,
            profit=profit,
            commission=self.commission(spec, volume),
            swap=swap,
            magic=magic,
            reason=reason,
            comment=comment,
        )

    def fill(self, spec: SymbolSpec, side: int, volume: Decimal, price: Decimal, at: datetime, **kwargs) -> SimDeal:
        if self.account.hedging:
            return self.open_position(spec, side, volume, price, at, **kwargs)
        return self.netting_fill(spec, side, volume, price, at, **kwargs)

    def can_afford(self, spec: SymbolSpec, side: int, volume: Decimal, price: Decimal, t: int) -> bool:
        """Free margin stays at or above zero once this deal's margin and commission are taken."""
        valuation = self.valuation(t)
        leverage = self.account.leverage
        extra = valuation.margin(spec, volume, price, leverage)
        if not self.account.hedging:
            pos = self.netting_position(spec.name)
            if pos is not None and pos.type != side:
                released = valuation.margin(spec, pos.volume, pos.price_open, leverage)
                extra = valuation.margin(spec, max(volume - pos.volume, ZERO), price, leverage) - released
        figures = self.figures(t)
        return figures.equity + self.commission(spec, volume) - figures.margin - extra >= 0
