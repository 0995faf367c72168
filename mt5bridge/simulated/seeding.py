"""Helpers that create simulated servers, accounts, money movements and months of past trading."""

from __future__ import annotations

import heapq
import math
import random
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from django.contrib.auth.hashers import PBKDF2PasswordHasher, check_password, make_password
from django.db import IntegrityError, transaction

from mt5bridge.gateway.types import AccountTradeMode, DealEntry, DealReason, DealType, NotFound

from . import clock, engine, prices
from .accounting import BUY, SELL, Valuation, money, rollover_days
from .book import Book, allocate_tickets
from .models import SimAccount, SimDeal, SimGroup, SimServer
from .symbols_catalog import DEFAULT_SERVER, SERVERS, SymbolSpec, get_server
from .trade_rules import clip_comment, normalize_price


class _SimPasswordHasher(PBKDF2PasswordHasher):
    # Simulated trading passwords are checked on every sync; a lighter work factor keeps that cheap.
    # The iteration count is stored in the hash, so check_password() verifies it as usual.
    iterations = 1_000


_HASHER = _SimPasswordHasher()


def hash_password(password: str) -> str:
    return make_password(password, hasher=_HASHER)


def password_matches(password: str, encoded: str) -> bool:
    if encoded.startswith(f"{_HASHER.algorithm}$"):
        # Verified with our own hasher so it works whatever PASSWORD_HASHERS a test settings module uses.
        return _HASHER.verify(password, encoded)
    return check_password(password, encoded)


def ensure_server(name: str) -> SimServer:
    """The server's row and its default groups, created on first use."""
    spec = get_server(name)
    if spec is None:
        raise NotFound(f"server {name!r} is not simulated; known: {', '.join(SERVERS)}")
    server, _ = SimServer.objects.get_or_create(
        name=name, defaults={"company": spec.company, "next_ticket": spec.first_ticket}
    )
    for group in spec.groups:
        SimGroup.objects.get_or_create(
            server=server,
            name=group.name,
            defaults={"company": spec.company, "margin_call": group.margin_call, "stop_out": group.stop_out},
        )
    return server


def ensure_servers() -> list[SimServer]:
    return [ensure_server(name) for name in SERVERS]


def _trade_mode_of(group: str) -> AccountTradeMode:
    parts = {p.lower() for p in group.replace("/", "\\").split("\\")}
    if "real" in parts:
        return AccountTradeMode.REAL
    if "contest" in parts:
        return AccountTradeMode.CONTEST
    return AccountTradeMode.DEMO


def create_account(
    *,
    login: int,
    password: str,
    server: str = DEFAULT_SERVER,
    group: str | None = None,
    leverage: int = 500,
    balance: Decimal = Decimal("10000"),
    credit: Decimal = Decimal("0"),
    hedging: bool = True,
    name: str = "",
    email: str = "",
    country: str = "",
    lead_source: str = "",
    lead_campaign: str = "",
    agent: int = 0,
    comment: str = "",
    trade_mode: AccountTradeMode | None = None,
    registration: datetime | None = None,
) -> SimAccount:
    """Open an account (idempotent by login: an existing one is returned unchanged).

    ``group`` defaults to the server's first group (``demo\\standard`` on MetaSim-Demo). A
    non-zero ``balance`` or ``credit`` is posted as the account's first deals, as a broker does.
    """
    existing = SimAccount.objects.filter(login=login).select_related("group").first()
    if existing is not None:
        return existing
    srv = ensure_server(server)
    group = group or get_server(server).groups[0].name
    grp, _ = SimGroup.objects.get_or_create(server=srv, name=group, defaults={"company": srv.company})
    registered = registration or clock.now()
    try:
        with transaction.atomic():
            account = SimAccount.objects.create(
                login=login,
                password=hash_password(password),
                server=server,
                group=grp,
                name=name,
                email=email,
                country=country,
                lead_source=lead_source,
                lead_campaign=lead_campaign,
                agent=agent,
                comment=comment,
                leverage=leverage,
                margin_mode=SimAccount.HEDGING if hedging else SimAccount.NETTING,
                trade_mode=int(trade_mode if trade_mode is not None else _trade_mode_of(group)),
                registration=registered,
                checked_at=registered,
            )
            if balance:
                engine.balance_operation(login, balance, DealType.BALANCE, "Deposit", registered)
            if credit:
                engine.balance_operation(login, credit, DealType.CREDIT, "Credit", registered)
    except IntegrityError:  # another process created it first
        return SimAccount.objects.select_related("group").get(login=login)
    account.refresh_from_db()
    return account


def change_password(login: int, password: str) -> None:
    if not SimAccount.objects.filter(login=login).update(password=hash_password(password)):
        raise NotFound(f"login {login} is not on the simulated server")


def deposit(login: int, amount: Decimal, *, comment: str = "Deposit", now: datetime | None = None) -> int:
    """Credit ``amount`` to the balance; returns the deal ticket."""
    return engine.balance_operation(login, abs(Decimal(amount)), DealType.BALANCE, comment, now or clock.now())


def withdraw(login: int, amount: Decimal, *, comment: str = "Withdrawal", now: datetime | None = None) -> int:
    """Take ``amount`` from the balance (refused with retcode 10019 beyond balance or free margin)."""
    return engine.balance_operation(login, -abs(Decimal(amount)), DealType.BALANCE, comment, now or clock.now())


# --- Past trading ---------------------------------------------------------------------

# How often each instrument is picked by a simulated retail trader.
_POPULARITY = {
    "EURUSD": 10, "GBPUSD": 6, "USDJPY": 6, "XAUUSD": 9, "AUDUSD": 3, "USDCAD": 3, "USDCHF": 2, "NZDUSD": 2,
    "EURJPY": 2, "GBPJPY": 3, "EURGBP": 1, "XAGUSD": 1, "US30": 3, "US500": 2, "NAS100": 4, "GER40": 2,
    "BTCUSD": 3, "ETHUSD": 2, "USOIL": 2, "AAPL": 1, "TSLA": 1, "NVDA": 1,
}  # fmt: skip
_EXPERTS = ((20240101, "TrendRider v2"), (555, "GridMaster"), (88001, "NewsScalper"))


def _volume_for(spec: SymbolSpec, notional_usd: float, t: int) -> Decimal | None:
    bid, _ = prices.raw_quote(spec, t)
    per_lot = float(bid * spec.contract_size * prices.usd_rate(spec.currency_profit, t))
    if per_lot <= 0:
        return None
    steps = Decimal(notional_usd / per_lot / float(spec.volume_step)).quantize(Decimal(1), rounding=ROUND_DOWN)
    volume = max(spec.volume_min, min(spec.volume_max, steps * spec.volume_step))
    return volume


def generate_history(
    login: int, *, days: int = 90, trades_per_day: float = 3.0, seed: int | None = None, now: datetime | None = None
) -> int:
    """Create ``days`` of closed trades and money movements before ``now``; returns the deals created.

    Trades open and close at the simulated prices of their instants (SL/TP closes where the price
    path crossed them), with commissions and swaps, so profits agree with the price feed and the
    account's balance ends equal to the sum of its deals. Open positions are left alone. It runs
    once per account (later calls return 0); call it right after ``create_account``.
    """
    now = now or clock.now()
    rng = random.Random(login if seed is None else seed)
    with transaction.atomic():
        book = Book.lock(login, now)
        account = book.account
        if account.history_seeded:
            return 0
        server = get_server(account.server)
        specs = [s for s in server.symbols if s.key in _POPULARITY]
        weights = [_POPULARITY[s.key] for s in specs]
        start_t = prices.epoch_second(now) - days * prices.DAY
        end_t = prices.epoch_second(now) - 3600
        opening = prices.from_epoch(start_t - prices.DAY)
        if account.registration > opening:
            SimDeal.objects.filter(
                account_id=login, time=account.registration, type__in=(DealType.BALANCE, DealType.CREDIT)
            ).update(time=opening)
            account.registration = opening

        records: list[tuple[int, int, dict]] = []  # (second, order, deal fields)
        seq = 0

        def record(t: int, **fields) -> None:
            nonlocal seq
            seq += 1
            records.append((t, seq, fields))

        running = float(account.balance)
        if running < 100:
            first = rng.choice((1000, 2500, 5000, 10000))
            record(start_t - prices.DAY + 60, type=DealType.BALANCE, profit=Decimal(first), comment="Deposit")
            running += first
        initial = running
        closes: list[tuple[int, int, float]] = []
        busy: dict[str, int] = {}
        next_cash_t = start_t + rng.randrange(7, 30) * prices.DAY
        credit_given = False

        plans = []
        for day in range(days):
            for _ in range(rng.randint(0, max(1, round(2 * trades_per_day)))):
                spec = rng.choices(specs, weights)[0]
                t_open = prices.next_open_second(spec.kind, start_t + day * prices.DAY + rng.randrange(prices.DAY))
                hold = int(math.exp(rng.uniform(math.log(90), math.log(4 * prices.DAY))))
                t_close = prices.next_open_second(spec.kind, t_open + hold)
                if t_close < end_t:
                    plans.append((t_open, t_close, spec))
        plans.sort(key=lambda p: p[0])

        for t_open, t_close, spec in plans:
            while closes and closes[0][0] <= t_open:
                running += heapq.heappop(closes)[2]
            while next_cash_t <= t_open:
                if running > initial * 1.3 and rng.random() < 0.6:
                    amount = round((running - initial) * rng.uniform(0.2, 0.5), -1)
                    record(next_cash_t, type=DealType.BALANCE, profit=-Decimal(amount), comment="Withdrawal")
                    running -= amount
                elif not credit_given and rng.random() < 0.4:
                    amount = round(initial * rng.choice((0.1, 0.2, 0.3)), -1)
                    record(next_cash_t, type=DealType.CREDIT, profit=Decimal(amount), comment="Credit bonus")
                    credit_given = True
                else:
                    amount = round(initial * rng.choice((0.1, 0.25, 0.5)), -1)
                    record(next_cash_t, type=DealType.BALANCE, profit=Decimal(amount), comment="Deposit")
                    running += amount
                next_cash_t += rng.randrange(15, 45) * prices.DAY
            if running < initial * 0.3:
                amount = round(initial - running, -1)
                record(t_open - 120, type=DealType.BALANCE, profit=Decimal(amount), comment="Deposit")
                running += amount
            if busy.get(spec.name, 0) >= t_open:
                continue  # one position per symbol at a time keeps netting accounts simple
            vol = spec.instrument.volatility
            volume = _volume_for(spec, running * rng.uniform(0.3, 3.0) * min(1.0, 0.1 / vol), t_open)
            if volume is None:
                continue
            side = rng.choice((BUY, SELL))
            bid, ask = prices.raw_quote(spec, t_open)
            price_open = ask if side == BUY else bid
            margin = Valuation(t_open).margin(spec, volume, price_open, account.leverage)
            if float(margin) > running * 0.5:
                continue
            magic, comment = (0, "")
            if rng.random() < 0.35:
                magic, comment = rng.choice(_EXPERTS)
            reason_in = DealReason.EXPERT if magic else DealReason.CLIENT
            close_reason, close_comment = reason_in, comment
            if rng.random() < 0.5:
                dist = float(price_open) * vol * math.sqrt((t_close - t_open) / (365.25 * prices.DAY))
                sl_dist, tp_dist = dist * rng.uniform(0.7, 2.0), dist * rng.uniform(0.8, 2.5)
                direction = 1 if side == BUY else -1
                sl = normalize_price(spec, float(price_open) - direction * sl_dist)
                tp = normalize_price(spec, float(price_open) + direction * tp_dist)
                spread = spec.spread * spec.point
                if side == BUY:
                    below, above = sl, tp
                else:
                    below, above = tp - spread, sl - spread
                hit = prices.first_crossing(spec, t_open + 1, t_close, bid_at_or_below=below, bid_at_or_above=above)
                if hit is not None:
                    t_close, hit_bid, hit_ask = hit
                    close = hit_bid if side == BUY else hit_ask
                    is_sl = close <= sl if side == BUY else close >= sl
                    close_reason = DealReason.SL if is_sl else DealReason.TP
                    close_comment = f"[sl {sl}]" if is_sl else f"[tp {tp}]"
            bid, ask = prices.raw_quote(spec, t_close)
            price_close = bid if side == BUY else ask
            profit = Valuation(t_close).profit(spec, side, volume, price_open, price_close)
            commission = money(spec.commission_per_lot * volume)
            swap = money(
                (spec.swap_long if side == BUY else spec.swap_short)
                * volume
                * rollover_days(spec.kind, t_open, t_close)
            )
            trade = {"symbol": spec.name, "volume": volume, "magic": magic}
            record(
                t_open, type=side, entry=DealEntry.IN, price=price_open, commission=commission,
                reason=reason_in, comment=comment, trade=trade,
            )  # fmt: skip
            record(
                t_close, type=SELL if side == BUY else BUY, entry=DealEntry.OUT, price=price_close, profit=profit,
                commission=commission, swap=swap, reason=close_reason, comment=close_comment, trade=trade,
            )  # fmt: skip
            running += float(commission)
            heapq.heappush(closes, (t_close, len(records), float(profit + commission + swap)))
            busy[spec.name] = t_close

        records.sort(key=lambda r: (r[0], r[1]))
        trades = sum(1 for r in records if "trade" in r[2])
        ticket = allocate_tickets(account.server, len(records) + trades)
        deals = []
        balance_change = credit_change = Decimal(0)
        for t, _, fields in records:
            trade = fields.pop("trade", None)
            deal = SimDeal(account_id=login, time=prices.from_epoch(t) + timedelta(milliseconds=rng.randrange(1000)))
            if trade is not None:
                deal.order = ticket
                ticket += 1
                if fields["entry"] == DealEntry.IN:
                    trade["position"] = deal.order
                deal.position_id = trade["position"]
                deal.symbol, deal.volume, deal.magic = trade["symbol"], trade["volume"], trade["magic"]
            deal.ticket = ticket
            ticket += 1
            for key, value in fields.items():
                setattr(deal, key, int(value) if key in ("type", "entry", "reason") else value)
            deal.comment = clip_comment(deal.comment)
            if deal.type in (DealType.CREDIT, DealType.BONUS):
                credit_change += deal.profit
            else:
                balance_change += deal.profit + deal.commission + deal.swap
            deals.append(deal)
        SimDeal.objects.bulk_create(deals, batch_size=1000)
        account.balance += balance_change
        account.credit += credit_change
        account.history_seeded = True
        account.version += 1
        account.save(update_fields=["balance", "credit", "registration", "history_seeded", "version"])
    return len(deals)
