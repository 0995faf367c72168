"""The incremental statistics: a state folded batch by batch gives exactly what the whole history gives.

The property test draws random histories (trades opened and closed whole, in parts or by a reversal, left
open; deposits, withdrawals, credit, bonuses, charges, cancelled deals; equal and microsecond times; prices
whose digits grow) and random arrival orders (deals and snapshots appear in independent prefixes, as the
sync and the EA write them), folds each arrival into the stored state (through its byte form, as the
database keeps it), rebuilding when the fold refuses, and compares every intermediate payload with the one
computed from the whole prefix.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from accounts.analytics import tables as an
from accounts.analytics import trades
from accounts.analytics.curves import ledger
from accounts.analytics.report import report
from accounts.analytics.running import Running, fold
from accounts.analytics.statistics import compute_statistics, history_state, sort_deals
from accounts.analytics.tables import DealTable, SnapshotTable

T0 = 1_767_225_600.0  # 2026-01-01
STEPS = (0.0, 0.000001, 1.0, 59.5, 3600.0, 86_400.0, 20 * 86_400.0)
PRICES = {"EURUSD": (1.1, 1.1001, 1.10012), "USDJPY": (150.0, 150.12, 150.123), "XAUUSD": (2300.0, 2300.5)}
MIN_TRADES = 2  # so the dispersion statistics are compared too


@st.composite
def histories(draw):
    rows, positions = [], {}
    t, ticket, next_position = T0, 0, 1
    for _ in range(draw(st.integers(0, 45))):
        t += draw(st.sampled_from(STEPS))
        ticket += draw(st.integers(1, 3))
        kind = draw(
            st.sampled_from(
                [
                    "deposit",
                    "withdrawal",
                    "credit",
                    "bonus",
                    "charge",
                    "cancel",
                    "open",
                    "open",
                    "close",
                    "part",
                    "flip",
                ]
            )
        )
        row = dict(time=t, ticket=ticket, deal_type=an.BALANCE, entry=0, position_id=0, magic=0, symbol="",
                   volume=0, price=0.0, profit=0, commission=0, swap=0, fee=0)  # fmt: skip
        cents = draw(st.integers(-20_000, 20_000))
        if kind == "deposit" or not rows:
            row["profit"] = draw(st.integers(1, 500_000))
        elif kind == "withdrawal":
            row["profit"] = -draw(st.integers(1, 100_000))
        elif kind in ("credit", "bonus", "charge", "cancel"):
            kinds = {"credit": an.CREDIT, "bonus": an.BONUS, "charge": draw(st.sampled_from([4, 7, 8, 12, 15])),
                     "cancel": an.CANCELED_TYPES[0]}  # fmt: skip
            row.update(deal_type=kinds[kind], profit=cents)
        elif kind == "open" or not positions:
            symbol = draw(st.sampled_from(sorted(PRICES)))
            side = draw(st.sampled_from([an.BUY, an.SELL]))
            volume = draw(st.integers(1, 30)) * 100
            pid = next_position
            next_position += 1
            positions[pid] = [side, volume, symbol, draw(st.sampled_from([0, 7, 2**62]))]
            row.update(deal_type=side, entry=an.ENTRY_IN, position_id=pid, symbol=symbol, volume=volume,
                       price=draw(st.sampled_from(PRICES[symbol])), commission=-draw(st.integers(0, 500)),
                       magic=positions[pid][3])  # fmt: skip
        else:
            pid = draw(st.sampled_from(sorted(positions)))
            side, volume, symbol, magic = positions[pid]
            size = volume if kind == "close" else (volume // 2 or volume) if kind == "part" else volume * 2
            entry = an.ENTRY_INOUT if kind == "flip" else an.ENTRY_OUT
            row.update(deal_type=1 - side, entry=entry, position_id=pid, symbol=symbol, volume=size, magic=magic,
                       price=draw(st.sampled_from(PRICES[symbol])), profit=cents, swap=draw(st.integers(-300, 50)),
                       fee=draw(st.sampled_from([0, -1])))  # fmt: skip
            if kind == "close" or size >= volume:
                positions.pop(pid)
            else:
                positions[pid][1] = volume - size
        rows.append(row)
    span = max(t - T0, 1.0)
    moments = draw(st.lists(st.floats(0, span + 86_400.0), max_size=14, unique=True))
    if rows and moments and draw(st.booleans()):
        moments.append(rows[len(rows) // 2]["time"] - T0)  # a snapshot at a deal's very time
    snaps = []
    for offset in sorted(set(moments)):
        balance = draw(st.integers(-1000, 1_000_000))
        credit = draw(st.sampled_from([0, 0, 5000]))
        snaps.append((T0 + round(offset, 6), balance, balance + credit + draw(st.integers(-50_000, 50_000)), credit))
    snaps = [s for i, s in enumerate(snaps) if i == 0 or s[0] > snaps[i - 1][0]]
    arrivals = draw(st.lists(st.tuples(st.integers(0, len(rows)), st.integers(0, len(snaps))), max_size=5))
    return rows, snaps, arrivals


def _deals(rows) -> DealTable:
    columns = ("time", "ticket", "deal_type", "entry", "position_id", "magic", "symbol", "volume", "price", "profit",
               "commission", "swap", "fee")  # fmt: skip
    return DealTable.from_columns(**{c: [r[c] for r in rows] for c in columns})


def _snaps(snaps) -> SnapshotTable:
    return SnapshotTable.from_columns(
        time=[s[0] for s in snaps], balance=[s[1] for s in snaps], equity=[s[2] for s in snaps],
        credit=[s[3] for s in snaps],
    )  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_folding_arrivals_one_by_one_equals_computing_the_whole_history(history):
    rows, snaps, arrivals = history
    steps = sorted(arrivals) + [(len(rows), len(snaps))]
    state, seen_d, seen_s = Running.start(), 0, 0
    for d_upto, s_upto in steps:
        d_upto, s_upto = max(d_upto, seen_d), max(s_upto, seen_s)  # the database only grows
        state = Running.from_bytes(state.to_bytes())
        if fold(state, _deals(rows[seen_d:d_upto]), _snaps(snaps[seen_s:s_upto])):
            event("folded")
        else:
            event("rebuilt")
            state = history_state(_deals(rows[:d_upto]), _snaps(snaps[:s_upto]))
        seen_d, seen_s = d_upto, s_upto
        whole = compute_statistics(_deals(rows[:d_upto]), _snaps(snaps[:s_upto]), min_trades=MIN_TRADES)
        assert report(state, MIN_TRADES) == whole


def _trade_history(days: int, start_ticket: int = 1, start: float = T0) -> list[dict]:
    """A deposit, then a position opened and closed every 6 hours (two symbols), for ``days`` days."""
    rows = [] if start_ticket > 1 else [dict(time=start, ticket=1, deal_type=an.BALANCE, entry=0, position_id=0,
                                             magic=0, symbol="", volume=0, price=0.0, profit=1_000_000,
                                             commission=0, swap=0, fee=0)]  # fmt: skip
    rng = np.random.default_rng(start_ticket)
    for k in range(days * 4):
        ticket = start_ticket + 1 + 2 * k
        opened = start + 60 + k * 21_600
        symbol = "EURUSD" if k % 3 else "XAUUSD"
        price = 1.10012 if symbol == "EURUSD" else 2300.51
        for entry, moment, deal_type in ((0, opened, an.BUY), (1, opened + 3600, an.SELL)):
            rows.append(dict(time=moment, ticket=ticket + entry, deal_type=deal_type, entry=entry, position_id=ticket,
                             magic=7, symbol=symbol, volume=100, price=price, commission=-350,
                             profit=int(rng.integers(-5000, 6000)) if entry else 0, swap=0, fee=0))  # fmt: skip
    return rows


def test_a_long_history_thinned_for_charts_gives_the_same_chart_in_one_batch_or_in_many():
    rows = _trade_history(400)  # 3,201 deals: the chart keeps at most MAX_POINTS points
    snaps = [(T0 + 3000 + k * 43_200.0, 1_000_000 + k, 1_000_500 + k, 0) for k in range(800)]
    whole = compute_statistics(_deals(rows), _snaps(snaps))
    state, folded = Running.start(), 0
    for lo in range(0, len(rows), 97):
        hi = min(lo + 97, len(rows))
        limit = rows[hi]["time"] if hi < len(rows) else float("inf")
        part = [s for s in snaps if (state.seen_snap_time or 0) < s[0] < limit]
        assert fold(state, _deals(rows[lo:hi]), _snaps(part))
        folded += 1
    assert folded > 30
    assert len(whole["series"]["equity"]) <= an.MAX_POINTS
    assert report(state, an.MIN_TRADES) == whole


def test_a_late_deal_of_a_trade_already_counted_is_refused_so_the_caller_rebuilds():
    rows = _trade_history(2)
    state = history_state(_deals(rows))
    late = dict(rows[-1], ticket=rows[-1]["ticket"] + 10, time=rows[-1]["time"] + 60, entry=an.ENTRY_OUT, volume=50)
    assert not fold(state, _deals([late]), _snaps([]))


def test_a_symbol_showing_more_price_digits_is_refused_so_past_pips_are_recomputed():
    rows = _trade_history(2)
    state = history_state(_deals(rows))
    more = [dict(r, ticket=r["ticket"] + 1000, time=r["time"] + 86_400 * 3, position_id=r["position_id"] + 1000,
                 price=1.100125) for r in rows[1:3]]  # fmt: skip
    assert not fold(state, _deals(more), _snaps([]))


def test_the_running_aggregates_equal_the_reference_formulas_over_the_trades_table():
    rows = _trade_history(25)
    for k, row in enumerate(rows):
        if row["entry"] == an.ENTRY_OUT and k % 7 == 0:
            row["profit"] = 700  # break-even trades (the commissions make up the rest) break the runs
    d = sort_deals(_deals(rows))
    led = ledger(d)
    t = trades.closed_trades(d, led.cash, led.balance_before, {})
    assert (t["profit"] == 0).any() and (t["profit"] > 0).any() and (t["profit"] < 0).any()
    summary = compute_statistics(_deals(rows), min_trades=2)["summary"]
    assert {k: summary[k] for k in trades.streaks(t["profit"])} == trades.streaks(t["profit"])
    for key, value in trades.dispersion(t).items():
        if isinstance(value, float):
            assert summary[key] == pytest.approx(value, abs=1e-4), key
        else:
            assert summary[key] == value, key
    assert summary["z_score"] is not None and summary["risk_of_ruin_pct"] is not None
