"""The simulated price feed: deterministic random walks per instrument, spreads and market hours.

A price is a pure function of (``MT5_SIM_SEED``, instrument, second), so every process sees the
same bid/ask at the same instant without sharing state. The log-price is a sum of value-noise
octaves (periods 1 s, 4 s, 16 s ... about six months) whose amplitudes grow with the square root
of the period, which makes it wander like a random walk while staying near a realistic level.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings

from config.caches import Memo
from mt5bridge.gateway.types import Tick

from .symbols_catalog import CRYPTO, ENERGY, FOREX, INDEX, INSTRUMENTS, METAL, STOCK, Instrument, SymbolSpec, canonical

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_YEAR = 365.25 * 86400
_PERIODS = tuple(4**k for k in range(13))  # 1 s ... 4**12 s (about 194 days)
# A 1 s octave is pure per-second jitter; keep it small so ticks flicker without dominating.
_JITTER_SCALE = 0.5

DAY = 86400
WEEK = 7 * DAY
_MONDAY = 4 * DAY  # 1970-01-05 00:00 UTC was a Monday; epoch day 0 was a Thursday


def _mix(x: int) -> int:
    """splitmix64's finaliser: a fast, well-spread 64-bit hash that is the same in every process."""
    x &= _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


class Walk:
    """The log-price path of one instrument for one seed."""

    __slots__ = ("base", "octaves")

    def __init__(self, instrument: Instrument, seed: int):
        self.base = instrument.base_price
        root = _mix(seed * _GOLDEN + zlib.crc32(instrument.key.encode()))
        octaves = []
        for k, period in enumerate(_PERIODS):
            amplitude = instrument.volatility * math.sqrt(period / _YEAR)
            if k == 0:
                amplitude *= _JITTER_SCALE
            octaves.append((_mix(root + (k + 1) * _GOLDEN), float(period), period, amplitude))
        self.octaves = tuple(octaves)

    @staticmethod
    def _lattice(key: int, i: int) -> float:
        return _mix(key + i * _GOLDEN) / 9223372036854775808.0 - 1.0  # [-1, 1)

    def log_value(self, t: int) -> float:
        lattice = self._lattice
        total = 0.0
        for key, fperiod, period, amplitude in self.octaves:
            i, r = divmod(t, period)
            v0 = lattice(key, i)
            if r:
                f = r / fperiod
                v0 += (lattice(key, i + 1) - v0) * (f * f * (3.0 - 2.0 * f))
            total += amplitude * v0
        return total

    def mid(self, t: int) -> float:
        return self.base * math.exp(self.log_value(t))

    def log_bounds(self, a: int, b: int) -> tuple[float, float]:
        """Bounds on the log-price over the whole seconds ``a..b``: cheap, and never too tight.

        Inside one lattice cell an octave moves monotonically (smoothstep), so its range is
        set by the two ends; across a few cells it stays within their lattice values.
        """
        lattice = self._lattice
        lo = hi = 0.0
        for key, fperiod, period, amplitude in self.octaves:
            ia, ra = divmod(a, period)
            ib, rb = divmod(b, period)
            if ia == ib:
                v0 = lattice(key, ia)
                v1 = lattice(key, ia + 1)
                fa, fb = ra / fperiod, rb / fperiod
                va = v0 + (v1 - v0) * (fa * fa * (3.0 - 2.0 * fa))
                vb = v0 + (v1 - v0) * (fb * fb * (3.0 - 2.0 * fb))
                lo += amplitude * min(va, vb)
                hi += amplitude * max(va, vb)
            elif ib - ia <= 3:
                values = [lattice(key, i) for i in range(ia, ib + 2)]
                lo += amplitude * min(values)
                hi += amplitude * max(values)
            else:
                lo -= amplitude
                hi += amplitude
        return lo, hi


# Keyed by (seed, instrument): a test that changes MT5_SIM_SEED gets walks of its own.
WALKS: Memo[Walk] = Memo("mt5bridge.simulated.walks", size=1024)


def walk(instrument: Instrument, seed: int | None = None) -> Walk:
    seed = settings.MT5_SIM_SEED if seed is None else seed
    return WALKS.get_or_build((seed, instrument.key), lambda: Walk(instrument, seed))


# --- Market hours ---------------------------------------------------------------------


def _h(day: int, hour: int, minute: int = 0) -> int:
    return day * DAY + hour * 3600 + minute * 60


def _daily_break_week() -> tuple[tuple[int, int], ...]:
    # Sunday 22:00 to Friday 21:00, with a 21:00-22:00 break every evening.
    spans = [(0, _h(0, 21))]
    spans += [(_h(d, 22), _h(d + 1, 21)) for d in range(0, 4)]
    spans.append((_h(6, 22), WEEK))
    return tuple(spans)


# Open spans inside a week that starts on Monday 00:00 UTC; [start, end) in seconds.
SESSIONS: dict[str, tuple[tuple[int, int], ...]] = {
    FOREX: ((0, _h(4, 21)), (_h(6, 21), WEEK)),
    METAL: _daily_break_week(),
    INDEX: _daily_break_week(),
    ENERGY: _daily_break_week(),
    STOCK: tuple((_h(d, 13, 30), _h(d, 20)) for d in range(5)),
    CRYPTO: ((0, WEEK),),
}


def _week_split(t: int) -> tuple[int, int]:
    week, offset = divmod(t - _MONDAY, WEEK)
    return _MONDAY + week * WEEK, offset


def is_open(kind: str, t: int) -> bool:
    _, offset = _week_split(t)
    return any(start <= offset < end for start, end in SESSIONS[kind])


def last_open_second(kind: str, t: int) -> int:
    """``t`` when the market is open, else the last second it was open before ``t``."""
    week_start, offset = _week_split(t)
    spans = SESSIONS[kind]
    best = None
    for start, end in spans:
        if start <= offset < end:
            return t
        if end <= offset:
            best = end
    if best is None:  # closed since the start of the week: the previous week's last span
        return week_start - WEEK + spans[-1][1] - 1
    return week_start + best - 1


def next_open_second(kind: str, t: int) -> int:
    """``t`` when the market is open, else the first second it opens after ``t``."""
    week_start, offset = _week_split(t)
    for start, end in SESSIONS[kind]:
        if start <= offset < end:
            return t
        if offset < start:
            return week_start + start
    return week_start + WEEK + SESSIONS[kind][0][0]


def open_segments(kind: str, a: int, b: int) -> Iterator[tuple[int, int]]:
    """The open stretches of ``a..b`` (whole seconds, both ends included), merged across weeks."""
    if a > b:
        return
    week_start, _ = _week_split(a)
    pending: tuple[int, int] | None = None
    while week_start <= b:
        for start, end in SESSIONS[kind]:
            s = max(a, week_start + start)
            e = min(b, week_start + end - 1)
            if s > e:
                continue
            if pending and pending[1] + 1 >= s:
                pending = (pending[0], e)
            else:
                if pending:
                    yield pending
                pending = (s, e)
        week_start += WEEK
    if pending:
        yield pending


# --- Quotes ---------------------------------------------------------------------------

# Quotes and USD rates by second, keyed by the seed and the symbol (or currency) too.
QUOTES: Memo[tuple[Decimal, Decimal, int]] = Memo("mt5bridge.simulated.quotes", size=100_000)


def epoch_second(when: datetime) -> int:
    return math.floor(when.timestamp())


def from_epoch(second: int) -> datetime:
    return datetime.fromtimestamp(second, tz=UTC)


def _price_text(value: float, digits: int) -> Decimal:
    return Decimal(f"{value:.{digits}f}")


def raw_quote(spec: SymbolSpec, t: int, seed: int | None = None) -> tuple[Decimal, Decimal]:
    """Bid and ask at second ``t`` as if the market were open (no freezing)."""
    half_spread = spec.spread * 10.0**-spec.digits / 2.0
    bid = _price_text(walk(spec.instrument, seed).mid(t) - half_spread, spec.digits)
    return bid, bid + spec.spread * spec.point


def quote(spec: SymbolSpec, t: int) -> tuple[Decimal, Decimal, int]:
    """Bid, ask and the second they were quoted at; frozen at the last open second when closed."""
    seed = settings.MT5_SIM_SEED
    return QUOTES.get_or_build((seed, spec.server, spec.name, t), lambda: _quote(spec, t, seed))


def _quote(spec: SymbolSpec, t: int, seed: int) -> tuple[Decimal, Decimal, int]:
    quoted_at = last_open_second(spec.kind, t)
    bid, ask = raw_quote(spec, quoted_at, seed)
    return bid, ask, quoted_at


def tick(spec: SymbolSpec, when: datetime) -> Tick:
    bid, ask, quoted_at = quote(spec, epoch_second(when))
    return Tick(symbol=spec.name, time=from_epoch(quoted_at), bid=bid, ask=ask, last=Decimal(0))


def usd_rate(currency: str, t: int) -> Decimal:
    """How many USD one unit of ``currency`` is worth at second ``t`` (from the bid of its USD pair)."""
    if currency == "USD":
        return Decimal(1)
    return QUOTES.get_or_build(("rate", settings.MT5_SIM_SEED, currency, t), lambda: _usd_rate(currency, t))[0]


def _usd_rate(currency: str, t: int) -> tuple[Decimal, Decimal, int]:
    if f"{currency}USD" in INSTRUMENTS:
        rate = quote(canonical(f"{currency}USD"), t)[0]
    elif f"USD{currency}" in INSTRUMENTS:
        rate = Decimal(1) / quote(canonical(f"USD{currency}"), t)[0]
    else:
        raise ValueError(f"no conversion pair for {currency}")
    return rate, rate, t


# --- Crossing search ------------------------------------------------------------------


def first_crossing(
    spec: SymbolSpec, a: int, b: int, *, bid_at_or_below: Decimal | None, bid_at_or_above: Decimal | None
) -> tuple[int, Decimal, Decimal] | None:
    """The first open second in ``a..b`` where the bid reaches either level, with its bid and ask.

    Narrows the interval by halves and drops halves whose price bounds cannot reach a level, so
    a long quiet stretch costs a handful of evaluations instead of one per second.
    """
    if bid_at_or_below is None and bid_at_or_above is None:
        return None
    w = walk(spec.instrument)
    half_spread = spec.spread * 10.0**-spec.digits / 2.0
    slack = 2 * 10.0**-spec.digits  # covers rounding to digits
    low_mid = (
        math.log(max(float(bid_at_or_below) + half_spread + slack, 1e-12) / w.base)
        if bid_at_or_below is not None
        else None
    )
    high_mid = (
        math.log(max(float(bid_at_or_above) + half_spread - slack, 1e-12) / w.base)
        if bid_at_or_above is not None
        else None
    )

    def hit(t: int) -> tuple[int, Decimal, Decimal] | None:
        bid, ask = raw_quote(spec, t)
        if (bid_at_or_below is not None and bid <= bid_at_or_below) or (
            bid_at_or_above is not None and bid >= bid_at_or_above
        ):
            return t, bid, ask
        return None

    def search(lo_t: int, hi_t: int) -> tuple[int, Decimal, Decimal] | None:
        if hi_t - lo_t < 8:
            for t in range(lo_t, hi_t + 1):
                found = hit(t)
                if found:
                    return found
            return None
        lo, hi = w.log_bounds(lo_t, hi_t)
        if not ((low_mid is not None and lo <= low_mid) or (high_mid is not None and hi >= high_mid)):
            return None
        middle = (lo_t + hi_t) // 2
        return search(lo_t, middle) or search(middle + 1, hi_t)

    for start, end in open_segments(spec.kind, a, b):
        found = search(start, end)
        if found:
            return found
    return None
