"""Equity and margin of many accounts at once (broker monitors), from rows cached in the process.

A monitor asks for the same thousands of accounts every fraction of a second while few of them
change. Each account's row and open positions are kept in memory with the row's ``version``
(every change to an account bumps it) and re-read only when that version moved, so a call costs
one query for the versions plus a pass over the positions at the current prices, and a second
call within the same second reuses those figures too.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection

from config.caches import Memo
from mt5bridge.gateway.types import AccountInfo

from . import accounting, prices, reads, sql
from .accounting import BUY, CENT, HUNDRED, Valuation, money
from .models import SimAccount, SimPosition
from .symbols_catalog import CRYPTO, SymbolSpec, symbol_spec

_ZERO = Decimal("0.00")
_CACHE_LIMIT = 250_000
_ORM_CHUNK = 500


@dataclass(slots=True)
class _Holding:
    spec: SymbolSpec
    side: int
    volume: Decimal
    price_open: Decimal
    sl: Decimal
    tp: Decimal
    accrued: Decimal
    rollovers: int  # the running rollover count when swap_since was set
    swap_per_day: Decimal  # swap rate × volume
    crypto: bool
    usd: bool  # profit in USD: profit is linear in the price and the margin does not move
    k: Decimal  # ± volume × contract size (negative for a sell)
    open_k: Decimal  # price_open × k
    notional: Decimal  # volume × price_open × contract size (USD holdings)
    watch: bool  # has an SL or a TP
    key: int  # id() of the catalogue's spec: a cheap dict key (a frozen dataclass hashes every field)
    swap_days: int = -1
    swap_value: Decimal = _ZERO


@dataclass(slots=True)
class _Account:
    pk: int
    version: int
    login: int
    server: str
    name: str
    currency: str
    leverage: int
    margin_mode: int
    trade_mode: int
    balance: Decimal
    credit: Decimal
    company: str
    margin_call: Decimal
    stop_out: Decimal
    holdings: list[_Holding]
    fixed_notional: Decimal = _ZERO  # of the USD holdings
    fixed_margin: Decimal | None = None  # when every holding is in USD
    info_fields: dict | None = None  # the AccountInfo fields that do not move with prices
    memo_t: int = -1
    memo: AccountInfo | None = None
    memo_due: bool = False

    def seal(self) -> _Account:
        self.fixed_notional = sum((h.notional for h in self.holdings if h.usd), _ZERO)
        if all(h.usd for h in self.holdings):
            self.fixed_margin = money(self.fixed_notional / self.leverage) if self.fixed_notional else _ZERO
        self.info_fields = {
            "login": self.login, "server": self.server, "name": self.name, "company": self.company,
            "currency": self.currency, "leverage": self.leverage, "balance": self.balance, "credit": self.credit,
            "margin_mode": reads.MARGIN_MODES[self.margin_mode], "trade_mode": reads.TRADE_MODES[self.trade_mode],
            "margin_so_call": self.margin_call, "margin_so_so": self.stop_out,
        }  # fmt: skip
        return self


@dataclass(slots=True)
class _Held:
    """What this process holds of one login: its account as last read, or None (never read, gone or settled)."""

    account: _Account | None = None


# Each login's rows as last read. Every call checks them against the database's (id, version) and re-reads the
# ones that moved: that check is what drops a stale row. At most _CACHE_LIMIT logins, the least recently asked
# for going first.
HELD: Memo[_Held] = Memo("mt5bridge.simulated.bulk_accounts", size=_CACHE_LIMIT)


def _holding(spec: SymbolSpec, side: int, volume, price_open, accrued, since: int, sl, tp) -> _Holding:
    usd = spec.currency_profit == "USD"
    k = volume * spec.contract_size if side == BUY else -(volume * spec.contract_size)
    return _Holding(
        spec, side, volume, price_open, sl, tp, accrued, accounting.rollover_count(spec.kind, since),
        accounting.swap_rate(spec, side) * volume, spec.kind == CRYPTO, usd, k, price_open * k,
        volume * price_open * spec.contract_size, bool(sl or tp), id(spec),
    )  # fmt: skip


def _refresh_postgres(logins: list[int], held: dict[int, _Held]) -> set[int]:
    """Re-read, in one query, the accounts that are new or whose version moved; returns the missing logins.

    The cached (id, version) pairs travel with the logins so the database answers only with
    what changed: a monitor's steady state costs one query that returns next to nothing.
    """
    ids, versions = [], []
    for login in logins:
        cached = held[login].account
        ids.append(cached.pk if cached else 0)
        versions.append(cached.version if cached else -1)
    rows = sql.changed_account_rows(logins, ids, versions)
    fresh: dict[int, _Account] = {}
    missing = set()
    for row in rows:
        login = row[2]
        if row[0] is None:
            missing.add(login)
            continue
        found = fresh.get(login)
        if found is None:
            found = fresh[login] = _Account(*row[:14], holdings=[])
        if row[14] is not None:
            symbol, side, volume, price_open, accrued, since, sl, tp = row[14:]
            found.holdings.append(_holding(symbol_spec(found.server, symbol), side, volume, price_open,
                                           accrued, since, sl, tp))  # fmt: skip
    for login in missing:
        held[login].account = None
    for login, found in fresh.items():
        held[login].account = found.seal()
    return missing


def _refresh_orm(logins: list[int], held: dict[int, _Held]) -> set[int]:
    current: dict[int, tuple[int, int]] = {}
    for i in range(0, len(logins), _ORM_CHUNK):
        rows = SimAccount.objects.filter(login__in=logins[i : i + _ORM_CHUNK]).values_list("login", "id", "version")
        current.update((login, (pk, version)) for login, pk, version in rows)
    stale = []
    for login in logins:
        cached = held[login].account
        if login not in current:
            held[login].account = None
        elif cached is None or (cached.pk, cached.version) != current[login]:
            stale.append(login)
    for found in _fetch_orm(stale):
        held[found.login].account = found
    return set(logins) - current.keys()


def _fetch_orm(logins: list[int]) -> Iterable[_Account]:
    accounts: dict[int, _Account] = {}
    for i in range(0, len(logins), _ORM_CHUNK):
        chunk = logins[i : i + _ORM_CHUNK]
        for row in SimAccount.objects.filter(login__in=chunk).values_list(
            "id", "version", "login", "server", "name", "currency", "leverage", "margin_mode", "trade_mode",
            "balance", "credit", "group__company", "group__margin_call", "group__stop_out",
        ):  # fmt: skip
            accounts[row[2]] = _Account(*row, holdings=[])
        for login, symbol, side, volume, price_open, accrued, since, sl, tp in SimPosition.objects.filter(
            account_id__in=chunk
        ).values_list("account_id", "symbol", "type", "volume", "price_open", "swap_accrued", "swap_since", "sl", "tp"):
            found = accounts[login]
            found.holdings.append(_holding(symbol_spec(found.server, symbol), side, volume, price_open, accrued,
                                           prices.epoch_second(since), sl, tp))  # fmt: skip
    return [a.seal() for a in accounts.values()]


def _evaluate(account: _Account, valuation: Valuation, quotes: dict, rollovers: dict) -> tuple[AccountInfo, bool]:
    """The account's figures at the valuation's second, and whether SL/TP or stop-out is due.

    The same arithmetic as ``accounting.figures`` (so both give equal cents), rearranged so
    that what does not move with the price is computed once per cached row.
    """
    t = valuation.t
    if account.memo is not None and (account.memo_t == t or not account.holdings):
        return account.memo, account.memo_due
    floating = _ZERO
    notional = account.fixed_notional
    hit = False
    for h in account.holdings:
        quote = quotes.get(h.key)
        if quote is None:
            quote = quotes[h.key] = valuation.symbol(h.spec)
        close = quote[h.side]  # the bid closes a buy, the ask a sell
        if h.usd:
            floating += (close * h.k - h.open_k).quantize(CENT, ROUND_HALF_UP)
        else:
            factor = quote[2]
            diff = close - h.price_open if h.side == BUY else h.price_open - close
            floating += (diff * h.volume * factor).quantize(CENT, ROUND_HALF_UP)
            notional += h.volume * h.price_open * factor
        days = rollovers[h.crypto] - h.rollovers
        if days != h.swap_days:
            h.swap_days = days
            h.swap_value = (h.accrued + money(h.swap_per_day * days)) if days > 0 else h.accrued
        floating += h.swap_value
        if h.watch and quote[3] and not hit:
            if h.side == BUY:
                hit = bool((h.sl and close <= h.sl) or (h.tp and close >= h.tp))
            else:
                hit = bool((h.sl and close >= h.sl) or (h.tp and close <= h.tp))
    margin = account.fixed_margin
    if margin is None:
        margin = money(notional / account.leverage) if notional else _ZERO
    equity = account.balance + account.credit + floating
    level = (equity / margin * HUNDRED).quantize(CENT, ROUND_HALF_UP) if margin else None
    due = hit or (level is not None and level <= account.stop_out)
    fields = account.info_fields.copy()
    fields["equity"], fields["margin"], fields["margin_free"] = equity, margin, equity - margin
    fields["margin_level"], fields["profit"] = level, floating
    info = object.__new__(AccountInfo)
    object.__setattr__(info, "__dict__", fields)  # see reads._build
    account.memo_t, account.memo, account.memo_due = t, info, due
    return info, due


@contextmanager
def _collector_paused() -> Iterator[None]:
    # A call builds an AccountInfo per account, and they outlive several young-generation
    # collections, so with the collector running each call also pays a share of full
    # collections over the whole process (about 100 ms each at 200k objects). Pausing it for
    # the call leaves memory to reference counting (nothing here makes cycles) and lets the
    # collector run at the next allocation outside.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def accounts_info(logins: Sequence[int], now: datetime) -> dict[int, AccountInfo]:
    """Figures of every existing login in ``logins`` at ``now``: one query (two on SQLite), prices once per symbol.

    Accounts whose SL/TP is crossed at ``now`` or that are at stop-out are settled first (rare,
    one account at a time); pending orders are left to per-account reads and ``process_market``.
    """
    with _collector_paused():
        return _accounts_info(logins, now)


def _accounts_info(logins: Sequence[int], now: datetime) -> dict[int, AccountInfo]:
    unique = list(dict.fromkeys(int(x) for x in logins))
    if connection.vendor != "postgresql":
        # SQLite may hand a rolled-back row's id to the next row, so (id, version) cannot prove a
        # cached copy current there; the embedded setup re-reads every time instead.
        HELD.clear()
    # Taken once: a call for more logins than the memo keeps still sees every one it read.
    held = {login: HELD.get_or_build(login, _Held) for login in unique}
    if connection.vendor == "postgresql":
        missing = _refresh_postgres(unique, held) if unique else set()
    else:
        missing = _refresh_orm(unique, held)
    t = prices.epoch_second(now)
    valuation = Valuation(t)
    rollovers = {True: accounting.rollover_count(CRYPTO, t), False: accounting.rollover_count("forex", t)}
    quotes: dict[int, tuple] = {}
    result: dict[int, AccountInfo] = {}
    for login in unique:
        if login in missing:
            continue
        account = held[login].account
        assert account is not None  # read above: present unless missing
        info, due = _evaluate(account, valuation, quotes, rollovers)
        if due:
            info = reads.account_info(reads.load(login, now))
            held[login].account = None
        result[login] = info
    return result
