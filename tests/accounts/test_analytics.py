"""Hand-computed fixtures for every analytics formula (pure functions, no database), then the database read."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import numpy as np
import pytest

from accounts.analytics import tables as an
from accounts.analytics import trades
from accounts.analytics.history import statistics_for_account, statistics_history, statistics_history_portable
from accounts.analytics.statistics import compute_statistics, period_bounds
from accounts.analytics.tables import DealTable, SnapshotTable
from accounts.models import AccountSnapshot, Deal, TradingAccount
from accounts.vault import encrypt
from tests.personas import next_login


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def deal(
    ticket,
    time,
    deal_type,
    *,
    entry=0,
    position=0,
    symbol="",
    volume="0",
    price="0",
    profit="0",
    commission="0",
    swap="0",
    fee="0",
    magic=0,
) -> dict:
    return {
        "ticket": ticket,
        "time": time,
        "deal_type": deal_type,
        "entry": entry,
        "position_id": position,
        "symbol": symbol,
        "volume": D(volume),
        "price": D(price),
        "profit": D(profit),
        "commission": D(commission),
        "swap": D(swap),
        "fee": D(fee),
        "magic": magic,
    }


def stats(deals, snapshots=None, **kwargs) -> dict:
    snaps = SnapshotTable.from_records(snapshots) if snapshots else None
    return compute_statistics(DealTable.from_records(deals), snaps, **kwargs)


# Deposit 1000; a long that nets +193 (200 profit, 2 x 3.50 commission); withdraw 193;
# a short that nets -101 (-100 profit, -1 swap).
# Balance: 1000 -> 996.50 (open fee) -> 1193 -> 1000 (withdrawal) -> 899.
BASIC = [
    deal(1, at(3, 1), an.BALANCE, profit="1000"),
    deal(
        2,
        at(3, 2, 10),
        an.BUY,
        entry=0,
        position=10,
        symbol="EURUSD",
        volume="1",
        price="1.10012",
        commission="-3.50",
        magic=7,
    ),
    deal(
        3,
        at(3, 2, 12),
        an.SELL,
        entry=1,
        position=10,
        symbol="EURUSD",
        volume="1",
        price="1.10212",
        commission="-3.50",
        profit="200",
        magic=7,
    ),
    deal(4, at(3, 3), an.BALANCE, profit="-193"),
    deal(5, at(3, 3, 10), an.SELL, entry=0, position=20, symbol="EURUSD", volume="0.5", price="1.10105", magic=9),
    deal(
        6,
        at(3, 3, 11),
        an.BUY,
        entry=1,
        position=20,
        symbol="EURUSD",
        volume="0.5",
        price="1.10305",
        profit="-100",
        swap="-1",
        magic=9,
    ),
]


@pytest.fixture(scope="module")
def basic():
    return stats(BASIC)


def test_gain_is_time_weighted_so_the_withdrawal_does_not_count(basic):
    # Sub-period 1: 1000 -> 1193 = +19.3 %; sub-period 2 (after the withdrawal): 1000 -> 899 = -10.1 %.
    # TWR = 1.193 * 0.899 - 1 = 0.072507 -> 7.2507 %.
    s = basic["summary"]
    assert s["gain_pct"] == pytest.approx(7.2507, abs=1e-4)
    assert s["net_profit"] == "92.00"
    assert s["deposits"] == "1000.00" and s["withdrawals"] == "193.00"
    # Absolute gain = net profit / money put in = 92 / 1000.
    assert s["absolute_gain_pct"] == pytest.approx(9.2)
    assert s["closing_balance"] == "899.00"


def test_daily_and_monthly_gain_compound_over_the_period(basic):
    # Period: 1 March 00:00 to 3 March 11:00 = 2 + 11/24 days.
    # Daily = 1.072507 ** (1 / 2.458333) - 1 = 2.88834 %; monthly uses 30.436875 days a month.
    s = basic["summary"]
    assert s["days"] == 2.46
    assert s["daily_gain_pct"] == pytest.approx(2.8883, abs=1e-4)
    assert s["monthly_gain_pct"] == pytest.approx(137.896, abs=1e-3)
    assert s["cagr_pct"] is None  # under 30 days of history: not annualised


def test_cagr_annualises_the_time_weighted_gain():
    # 1000 -> 1100 over exactly 365.2425 days: CAGR = 10 %; over half that: 1.1 ** 2 - 1 = 21 %.
    start = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    for days, expected in ((365.2425, 10.0), (365.2425 / 2, 21.0)):
        end = start + days * 86400
        deals = DealTable.from_columns(
            time=[start, end - 60, end],
            ticket=[1, 2, 3],
            deal_type=[2, 0, 1],
            entry=[0, 0, 1],
            position_id=[0, 5, 5],
            magic=[0, 0, 0],
            symbol=["", "X", "X"],
            volume=[0, 10000, 10000],
            price=[0, 1.0, 1.1],
            profit=[100000, 0, 10000],
            commission=[0, 0, 0],
            swap=[0, 0, 0],
            fee=[0, 0, 0],
        )
        assert compute_statistics(deals)["summary"]["cagr_pct"] == pytest.approx(expected, abs=1e-6)


def test_balance_drawdown_ignores_withdrawals_and_has_dates(basic):
    # Growth index: 1, 0.9965, 1.193, 1.193 (withdrawal), 1.072507 -> fall from 1.193 = 10.1 %.
    # Money: cumulative P/L 0, -3.5, 193, 193, 92 -> 101.00 from 2 March 12:00 to 3 March 11:00.
    s = basic["summary"]
    assert s["max_drawdown_balance_pct"] == pytest.approx(10.1)
    assert s["max_drawdown_balance"] == "101.00"
    assert s["max_drawdown_balance_peak_at"] == "2026-03-02T12:00:00Z"
    assert s["max_drawdown_balance_trough_at"] == "2026-03-03T11:00:00Z"


def test_trades_group_deals_by_position_with_costs_included(basic):
    s = basic["summary"]
    assert s["trades"] == 2 and s["long_trades"] == 1 and s["short_trades"] == 1
    assert s["lots"] == "1.50"
    assert s["gross_profit"] == "193.00" and s["gross_loss"] == "-101.00"
    assert s["profit_factor"] == pytest.approx(193 / 101, abs=1e-4)  # 1.9109
    assert s["expectancy"] == "46.00"  # (193 - 101) / 2
    assert s["average_win"] == "193.00" and s["average_loss"] == "-101.00"
    assert s["win_rate_pct"] == 50.0
    assert s["long_win_rate_pct"] == 100.0 and s["short_win_rate_pct"] == 0.0
    assert s["best_trade"] == {"position": 10, "profit": "193.00", "closed_at": "2026-03-02T12:00:00Z"}
    assert s["worst_trade"]["position"] == 20
    assert s["average_trade_seconds"] == 5400.0  # (2 h + 1 h) / 2
    assert s["commissions"] == "-7.00" and s["swaps"] == "-1.00" and s["fees"] == "0.00"


def test_pips_use_the_quote_digits_seen_in_prices(basic):
    # 5-digit EURUSD: pip = 0.0001. Long 1.10012 -> 1.10212 = +20 pips; short 1.10105 -> 1.10305 = -20.
    s = basic["summary"]
    assert s["best_trade_pips"] == 20.0 and s["worst_trade_pips"] == -20.0
    assert s["expectancy_pips"] == 0.0
    assert s["average_win_pips"] == 20.0 and s["average_loss_pips"] == -20.0


def test_digits_override_changes_the_pip_size():
    # Told EURUSD has 4 digits: pip = point = 0.0001 as well; told 2: pip = 0.01 -> 0.2 pips.
    assert stats(BASIC, digits={"EURUSD": 2})["summary"]["best_trade_pips"] == 0.2


@pytest.mark.parametrize(
    ("prices", "digits", "pip"),
    [
        ([1.10012, 1.1, 1.10013], 5, 0.0001),
        ([150.123, 150.1], 3, 0.01),
        ([1.2345], 4, 0.0001),
        ([2345.67, 2345.6], 2, 0.01),
        ([65000.5], 1, 0.1),
        ([18000.0, 18001.0], 0, 1.0),
    ],
)
def test_pip_size_is_ten_points_on_3_and_5_digit_quotes(prices, digits, pip):
    found = an.price_digits(np.array(prices))
    assert found == digits
    assert an.pip_size(found) == pytest.approx(pip)


def test_breakdowns_by_symbol_magic_hour_weekday_and_month(basic):
    series = basic["series"]
    (eurusd,) = series["by_symbol"]
    assert eurusd["symbol"] == "EURUSD" and eurusd["trades"] == 2 and eurusd["profit"] == "92.00"
    assert eurusd["pips"] == 0.0
    by_magic = {row["magic"]: row for row in series["by_magic"]}
    assert by_magic[7]["profit"] == "193.00" and by_magic[9]["profit"] == "-101.00"
    assert by_magic[7]["win_rate_pct"] == 100.0
    hours = {row["hour"]: row for row in series["by_hour"]}
    assert len(hours) == 24
    assert hours[12]["trades"] == 1 and hours[11]["profit"] == "-101.00" and hours[0]["trades"] == 0
    days = {row["weekday"]: row for row in series["by_weekday"]}
    assert days[0]["profit"] == "193.00"  # 2 March 2026 is a Monday
    assert days[1]["profit"] == "-101.00"
    assert series["monthly_returns"] == [{"month": "2026-03", "return_pct": 7.2507, "profit": "92.00", "trades": 2}]


def test_monthly_returns_chain_and_fill_empty_months():
    # January: 1000 -> 1100 = +10 %. February: nothing = 0 %. March: 1100 -> 990 = -10 %.
    deals = [
        deal(1, at(1, 5), an.BALANCE, profit="1000"),
        deal(2, at(1, 6), an.BUY, position=1, symbol="BTCUSD", volume="1", price="40000.5"),
        deal(3, at(1, 7), an.SELL, entry=1, position=1, symbol="BTCUSD", volume="1", price="40100.5", profit="100"),
        deal(4, at(3, 2), an.BUY, position=2, symbol="BTCUSD", volume="1", price="40000.5"),
        deal(5, at(3, 3), an.SELL, entry=1, position=2, symbol="BTCUSD", volume="1", price="39890.5", profit="-110"),
    ]
    months = stats(deals)["series"]["monthly_returns"]
    assert [(m["month"], m["return_pct"], m["profit"], m["trades"]) for m in months] == [
        ("2026-01", 10.0, "100.00", 1),
        ("2026-02", 0.0, "0.00", 0),
        ("2026-03", -10.0, "-110.00", 1),
    ]


def test_credit_and_bonus_never_count_as_profit():
    # Deposit 1000, credit +500, bonus +200 (balance 1200), a +100 trade (1300), credit -500 taken back.
    # Net profit 100; TWR = 1300 / 1200 - 1 = 8.3333 %; absolute = 100 / (1000 + 200).
    deals = [
        deal(1, at(3, 1), an.BALANCE, profit="1000"),
        deal(2, at(3, 1, 1), an.CREDIT, profit="500"),
        deal(3, at(3, 1, 2), an.BONUS, profit="200"),
        deal(4, at(3, 2), an.BUY, position=4, symbol="BTCUSD", volume="0.1", price="60000.5"),
        deal(
            5, at(3, 2, 1), an.SELL, entry=1, position=4, symbol="BTCUSD", volume="0.1", price="61000.5", profit="100"
        ),
        deal(6, at(3, 3), an.CREDIT, profit="-500"),
    ]
    s = stats(deals)["summary"]
    assert s["net_profit"] == "100.00" and s["trades_profit"] == "100.00"
    assert s["gain_pct"] == pytest.approx(8.3333, abs=1e-4)
    assert s["absolute_gain_pct"] == pytest.approx(8.3333, abs=1e-4)
    assert s["bonuses"] == "200.00" and s["credit"] == "0.00" and s["deposits"] == "1000.00"
    assert s["closing_balance"] == "1300.00"  # credit lives outside the balance
    assert s["max_drawdown_balance"] == "0.00"


def test_commission_deals_count_in_profit_and_commissions_but_are_not_trades():
    deals = [deal(1, at(3, 1), an.BALANCE, profit="1000"), deal(2, at(3, 2), 8, profit="-5")]
    s = stats(deals)["summary"]
    assert s["trades"] == 0 and s["net_profit"] == "-5.00" and s["commissions"] == "-5.00"
    assert s["gain_pct"] == pytest.approx(-0.5)


def test_partial_closes_make_one_trade_and_open_positions_none():
    deals = [
        deal(1, at(3, 1), an.BALANCE, profit="10000"),
        deal(2, at(3, 2), an.BUY, position=30, symbol="BTCUSD", volume="1", price="50000.5"),
        deal(
            3, at(3, 2, 1), an.SELL, entry=1, position=30, symbol="BTCUSD", volume="0.4", price="50100.5", profit="40"
        ),
        deal(
            4, at(3, 2, 2), an.SELL, entry=1, position=30, symbol="BTCUSD", volume="0.6", price="50100.5", profit="60"
        ),
        deal(5, at(3, 3), an.BUY, position=31, symbol="BTCUSD", volume="1", price="50000.5"),  # still open
        deal(6, at(3, 4), an.SELL, position=32, symbol="BTCUSD", volume="1", price="50000.5"),
        deal(
            7, at(3, 4, 1), an.BUY, entry=1, position=32, symbol="BTCUSD", volume="0.5", price="49900.5", profit="50"
        ),  # half closed: not a trade yet
    ]
    s = stats(deals)["summary"]
    assert s["trades"] == 1
    assert s["best_trade"]["profit"] == "100.00" and s["lots"] == "1.00"
    assert s["best_trade_pips"] == 1000.0  # 1-digit quote: pip = 0.1; 100 / 0.1


def test_a_trade_opened_before_the_window_still_counts_from_its_closing_deal():
    deals = [
        deal(1, at(3, 2), an.SELL, entry=1, position=40, symbol="XAUUSD", volume="0.2", price="2300.15", profit="30")
    ]
    s = stats(deals, opening_balance=100000)["summary"]
    assert s["trades"] == 1 and s["long_trades"] == 1  # a SELL exit closes a long
    assert s["lots"] == "0.20" and s["best_trade_pips"] is None  # no entry price known
    assert s["gain_pct"] == pytest.approx(3.0)  # 30 on an opening balance of 1000


def test_streaks_by_count_and_by_money():
    # Runs: W2 (+30), L1 (-5), W3 (+120), L2 (-3), break-even, L1 (-100).
    profit = np.array([10, 20, -5, 30, 40, 50, -1, -2, 0, -100]) * 100
    s = trades.streaks(profit)
    assert s["max_consecutive_wins"] == {"count": 3, "money": "120.00"}
    assert s["max_consecutive_profit"] == {"count": 3, "money": "120.00"}
    assert s["max_consecutive_losses"] == {"count": 2, "money": "-3.00"}
    assert s["max_consecutive_loss"] == {"count": 1, "money": "-100.00"}


def _t(profit_cents, returns):
    n = len(profit_cents)
    return {
        "profit": np.array(profit_cents),
        "returns": np.array(returns, dtype=float),
        "long": np.ones(n, dtype=bool),
        "pips": np.full(n, np.nan),
    }


def test_sharpe_sortino_std_dev_ahpr_ghpr():
    # Returns 2 %, -1 %, 3 %, -2 %: mean 0.5 %; sample sd = sqrt(0.0017 / 3) = 2.38048 %.
    # Sharpe = 0.005 / 0.0238048 = 0.21004. Downside deviation = sqrt((0.0001 + 0.0004) / 4) = 1.11803 %.
    # Sortino = 0.005 / 0.0111803 = 0.44721. AHPR = mean(1 + r) - 1 = 0.5 %.
    # GHPR = (1.02 * 0.99 * 1.03 * 0.98) ** (1/4) - 1 = 1.01929212 ** 0.25 - 1 = 0.478853 %.
    d = trades.dispersion(_t([200, -100, 300, -200], [0.02, -0.01, 0.03, -0.02]))
    assert d["std_dev_returns_pct"] == pytest.approx(2.3805, abs=1e-4)
    assert d["sharpe"] == pytest.approx(0.2100, abs=1e-4)
    assert d["sortino"] == pytest.approx(0.4472, abs=1e-4)
    assert d["ahpr_pct"] == pytest.approx(0.5)
    assert d["ghpr_pct"] == pytest.approx(0.4789, abs=1e-4)
    # Profit sd: values 2, -1, 3, -2 (money): mean 0.5, squares 2.25 + 2.25 + 6.25 + 6.25 = 17 / 3 -> 2.38.
    assert d["std_dev_profit"] == "2.38"


def test_z_score_is_the_runs_test():
    # W W L L W: N = 5, W = 3, L = 2, runs R = 3, X = 2WL = 12.
    # Z = (N (R - 0.5) - X) / sqrt(X (X - N) / (N - 1)) = (12.5 - 12) / sqrt(21) = 0.10911.
    assert trades.z_score(np.array([5, 1, -2, -3, 4])) == pytest.approx(0.5 / math.sqrt(21))
    assert trades.z_score(np.array([5, 1])) is None  # no losses: undefined


def test_risk_of_ruin():
    # Win rate 50 %, average win 200, average loss 100: edge = (100 - 50) / (100 + 50) = 1/3,
    # (1 - E) / (1 + E) = 0.5; capital = 1000 = 10 average losses -> 0.5 ** 10 = 0.0977 %.
    assert trades.risk_of_ruin(_t([20000, -10000], [0.2, -0.1])) == pytest.approx(0.097656, abs=1e-6)
    # No edge: ruin is certain.
    assert trades.risk_of_ruin(_t([10000, -20000], [0.1, -0.2])) == 100.0


def _alternating_trades(n: int) -> list[dict]:
    deals = [deal(1, at(1, 1), an.BALANCE, profit="10000")]
    for i in range(n):
        pos = 100 + i
        profit = "150" if i % 2 == 0 else "-100"
        deals += [
            deal(
                2 * pos, at(1, 2 + i // 2, i % 24), an.BUY, position=pos, symbol="BTCUSD", volume="1", price="40000.5"
            ),
            deal(
                2 * pos + 1,
                at(1, 2 + i // 2, i % 24, 30),
                an.SELL,
                entry=1,
                position=pos,
                symbol="BTCUSD",
                volume="1",
                price="40001.5",
                profit=profit,
            ),
        ]
    return deals


def test_dispersion_statistics_are_withheld_under_30_trades():
    result = stats(_alternating_trades(29))
    assert result["trades_count"] == 29
    assert set(result["insufficient"]) == set(an.GUARDED)
    assert all(result["summary"][name] is None for name in an.GUARDED)
    assert result["summary"]["profit_factor"] is not None  # the rest is still shown


def test_dispersion_statistics_appear_from_30_trades_and_match_a_plain_loop():
    result = stats(_alternating_trades(30))
    assert result["insufficient"] == []
    # Reference: per-trade return on the balance before each close, computed step by step.
    balance, returns = 10000.0, []
    for i in range(30):
        p = 150.0 if i % 2 == 0 else -100.0
        returns.append(p / balance)
        balance += p
    mean = sum(returns) / 30
    sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / 29)
    s = result["summary"]
    assert s["sharpe"] == pytest.approx(mean / sd, abs=1e-4)
    assert s["std_dev_returns_pct"] == pytest.approx(sd * 100, abs=1e-4)
    # Strict alternation: 30 runs of 15 W / 15 L -> Z = (30 * 29.5 - 450) / sqrt(450 * 420 / 29) = 5.3852.
    assert s["z_score"] == pytest.approx((30 * 29.5 - 450) / math.sqrt(450 * 420 / 29), abs=1e-4)
    assert s["gain_pct"] == pytest.approx((balance / 10000 - 1) * 100, abs=1e-4)


def test_equity_drawdown_uses_equity_without_credit_and_ignores_withdrawals():
    # Own equity (equity - 500 credit): 1000, 1200, 1000 (after a 200 withdrawal), 900.
    # Flow-adjusted: 1000, 1200, 1200, 1100 -> 100.00 from t2 to t4; index 1, 1.2, 1.2, 1.08 -> 10 %.
    deals = [deal(1, at(3, 1), an.BALANCE, profit="1000"), deal(2, at(3, 2, 12), an.BALANCE, profit="-200")]
    snaps = [
        {"taken_at": at(3, 1, 1), "balance": D("1000"), "equity": D("1500"), "credit": D("500")},
        {"taken_at": at(3, 2), "balance": D("1000"), "equity": D("1700"), "credit": D("500")},
        {"taken_at": at(3, 3), "balance": D("800"), "equity": D("1500"), "credit": D("500")},
        {"taken_at": at(3, 4), "balance": D("800"), "equity": D("1400"), "credit": D("500")},
    ]
    result = stats(deals, snaps)
    s = result["summary"]
    assert s["max_drawdown_equity"] == "100.00"
    assert s["max_drawdown_equity_pct"] == pytest.approx(10.0)
    assert s["max_drawdown_equity_peak_at"] == "2026-03-02T00:00:00Z"
    assert s["max_drawdown_equity_trough_at"] == "2026-03-04T00:00:00Z"
    # The curves start at the first deposit (equity estimated there), then the snapshots measure it.
    assert result["series"]["equity"][0][0] == "2026-03-01T00:00:00Z" and result["series"]["equity"][0][3] is True
    assert result["series"]["equity"][1] == ["2026-03-01T01:00:00Z", "1500.00", "1000.00", False]
    # The withdrawal's point (estimated: floating 200 interpolated) is flow-neutral: no drawdown there.
    assert [p[1] for p in result["series"]["drawdown"]] == [0.0, 0.0, 0.0, 0.0, 0.0, 10.0]


def test_profit_distribution_bins_every_trade():
    dist = stats(_alternating_trades(30))["series"]["profit_distribution"]
    assert len(dist) == an.DISTRIBUTION_BINS
    assert sum(b["count"] for b in dist) == 30
    assert dist[0]["from"] == "-100.00" and dist[-1]["to"] == "150.00"
    assert dist[0]["count"] == 15 and dist[-1]["count"] == 15


def test_no_deals_gives_empty_statistics_not_errors():
    result = stats([])
    assert result["summary"]["trades"] == 0 and result["summary"]["gain_pct"] == 0.0
    assert result["series"]["equity"] == [] and result["series"]["monthly_returns"] == []


def test_long_series_are_thinned_for_charts():
    deals = [
        deal(i, datetime.fromtimestamp(1.7e9 + i * 60, tz=UTC), 8 if i else an.BALANCE, profit="-0.01" if i else "1000")
        for i in range(3000)
    ]
    series = stats(deals)["series"]
    assert len(series["equity"]) <= an.MAX_POINTS and len(series["drawdown"]) <= an.MAX_POINTS
    assert series["equity"][-1][1] == "970.01"  # the last point is kept


# --- The database read path -------------------------------------------------------------------

START = datetime(2026, 1, 5, 8, tzinfo=UTC)


def _account(owner) -> TradingAccount:
    return TradingAccount.objects.create(
        owner=owner, login=next_login(), server="MetaSim-Demo", password_encrypted=encrypt("x"), currency="EUR"
    )


def _mixed_history(account: TradingAccount, *, positions: int = 120, seed: int = 3) -> None:
    """A few hundred deals of every kind and six-hourly snapshots, at microsecond times.

    Deposits, withdrawals, credit in and out, a bonus, commission and cancelled deals; buys and sells
    on three symbols and magic numbers up to 2**62, closed whole, in two parts or by a reversal, or
    left open; commissions on every trade deal, swaps on overnight exits, an occasional fee.
    """
    rng = random.Random(seed)
    tickets = itertools.count(1)
    rows: list[Deal] = []

    def add(time, deal_type, **fields):
        rows.append(Deal(account=account, ticket=next(tickets), time=time, deal_type=deal_type, **fields))

    def cents(mean, spread):
        return D(str(round(rng.gauss(mean, spread), 2)))

    add(START, an.BALANCE, profit=D("5000.00"))
    add(START + timedelta(minutes=1), an.CREDIT, profit=D("500.00"))
    clock = START + timedelta(hours=1)
    symbols = (("EURUSD", 5, 1.08), ("USDJPY", 3, 150.0), ("XAUUSD", 2, 2300.0))
    for position in range(1, positions + 1):
        name, digits, level = rng.choice(symbols)
        long = rng.random() < 0.5
        side, other = (an.BUY, an.SELL) if long else (an.SELL, an.BUY)
        volume = D(rng.randint(2, 300)) / 100
        common = {"position_id": position, "symbol": name, "magic": rng.choice((0, 7, 2**62))}
        commission = -(volume * D("3.5")).quantize(D("0.01"))
        opened = clock + timedelta(seconds=rng.uniform(1, 3600))
        price = D(str(round(level * (1 + rng.gauss(0, 0.01)), digits)))
        add(opened, side, entry=an.ENTRY_IN, volume=volume, price=price, commission=commission, **common)
        shape = position % 7  # 0: closed in two parts, 1: reversed, 6: left open, others: closed at once
        closed = opened + timedelta(seconds=rng.uniform(60, 2 * 86400))
        exit_price = D(str(round(float(price) * (1 + rng.gauss(0, 0.002)), digits)))
        costs = {
            "commission": commission,
            "swap": cents(-0.5, 1) if closed - opened > timedelta(days=1) else D(0),
            "fee": D("-0.01") if position % 11 == 0 else D(0),
        }
        exits = [(closed, an.ENTRY_OUT, volume, exit_price, costs)]
        if shape == 0:
            part = (volume / 3).quantize(D("0.01"))
            exits = [(opened + (closed - opened) / 2, an.ENTRY_OUT, part, price, {})]
            exits.append((closed, an.ENTRY_OUT, volume - part, exit_price, costs))
        elif shape == 1:
            exits = [(closed, an.ENTRY_INOUT, volume * 2, exit_price, {"commission": commission})]
        elif shape == 6:
            exits = []
        for moment, entry, size, exit_at, charges in exits:
            add(moment, other, entry=entry, volume=size, price=exit_at, profit=cents(3, 60), **charges, **common)
        clock += timedelta(seconds=rng.uniform(2 * 3600, 20 * 3600))
        if position % 25 == 0:
            add(clock, an.BALANCE, profit=D("-300.00"))  # withdrawal
            add(clock + timedelta(seconds=1), 7, profit=D("-1.23"))  # a commission deal
        if position == 40:
            add(clock + timedelta(seconds=2), an.BONUS, profit=D("100.00"))
            add(clock + timedelta(seconds=3), an.CANCELED_TYPES[0], profit=D("0.00"))
        if position == 80:
            add(clock + timedelta(seconds=4), an.CREDIT, profit=D("-500.00"))
    Deal.objects.bulk_create(rows)
    balance = 5000.0
    steps = int((clock - START) / timedelta(hours=6))
    snapshots = []
    for k in range(steps):
        balance += rng.gauss(2, 40)
        snapshots.append(
            AccountSnapshot(
                account=account,
                taken_at=START + timedelta(hours=6 * k, microseconds=rng.randint(0, 999_999)),
                balance=D(str(round(balance, 2))),
                equity=D(str(round(balance + rng.gauss(0, 25), 2))),
                credit=D("500.00") if k < steps // 2 else D("0.00"),
            )
        )
    AccountSnapshot.objects.bulk_create(snapshots)


def _statistics_from_orm_objects(account, date_from: date | None, date_to: date | None) -> dict:
    """The reference: model instances (Decimal money, datetime times) through the record builders."""
    start, end = period_bounds(date_from, date_to)
    deals, snapshots = Deal.objects.filter(account=account), AccountSnapshot.objects.filter(account=account)
    opening = D(0)
    if start:
        opening = sum(
            (
                d.profit + d.commission + d.swap + d.fee
                for d in deals.filter(time__lt=start)
                if d.deal_type != an.CREDIT
            ),
            D(0),
        )
        deals, snapshots = deals.filter(time__gte=start), snapshots.filter(taken_at__gte=start)
    if end:
        deals, snapshots = deals.filter(time__lt=end), snapshots.filter(taken_at__lt=end)
    result = compute_statistics(
        DealTable.from_records(list(deals)),
        SnapshotTable.from_records(list(snapshots)),
        opening_balance=int(opening * 100),
    )
    result["account_id"] = str(account.pk)
    result["currency"] = account.currency
    result["date_from"] = date_from.isoformat() if date_from else None
    result["date_to"] = date_to.isoformat() if date_to else None
    return result


@pytest.fixture
def mixed_account(owner):
    account = _account(owner)
    _mixed_history(account)
    return account


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("date_from", "date_to"),
    [(None, None), (date(2026, 1, 20), date(2026, 2, 10)), (date(2026, 1, 25), None)],
    ids=["whole-history", "window", "from-a-date"],
)
def test_statistics_read_in_one_query_equal_those_from_orm_objects(mixed_account, date_from, date_to):
    result = statistics_for_account(mixed_account, date_from=date_from, date_to=date_to)
    assert result == _statistics_from_orm_objects(mixed_account, date_from, date_to)
    if date_from is None and date_to is None:
        # The fixture exercised what it means to: every statistic present, money of every kind.
        s = result["summary"]
        assert result["insufficient"] == [] and result["trades_count"] >= an.MIN_TRADES
        assert 250 <= s["deals"] <= 400
        assert s["credit"] == "0.00" and s["bonuses"] == "100.00" and s["withdrawals"] == "1200.00"
        assert s["swaps"] != "0.00" and s["fees"] != "0.00" and s["commissions"] != "0.00"
        assert {row["magic"] for row in result["series"]["by_magic"]} == {0, 7, 2**62}
    else:
        assert result["summary"]["opening_balance"] not in (None, "0.00")


@pytest.mark.django_db
def test_portable_history_reader_gives_the_same_columns_as_the_postgresql_one(mixed_account):
    start, end = period_bounds(date(2026, 1, 20), date(2026, 2, 10))
    fast_deals, fast_snaps, fast_opening = statistics_history(mixed_account, start=start, end=end)
    deals, snaps, opening = statistics_history_portable(mixed_account, start=start, end=end)
    assert fast_opening == opening != 0
    by_ticket, fast_by_ticket = np.argsort(deals.ticket), np.argsort(fast_deals.ticket)
    for field in ("time", "ticket", "deal_type", "entry", "position_id", "magic", "volume", "price", "profit"):
        assert np.array_equal(getattr(deals, field)[by_ticket], getattr(fast_deals, field)[fast_by_ticket]), field
    for field in ("commission", "swap", "fee"):
        assert np.array_equal(getattr(deals, field)[by_ticket], getattr(fast_deals, field)[fast_by_ticket]), field
    names = np.array(deals.symbols)[deals.symbol][by_ticket]
    assert list(names) == list(np.array(fast_deals.symbols)[fast_deals.symbol][fast_by_ticket])
    by_time, fast_by_time = np.argsort(snaps.time), np.argsort(fast_snaps.time)
    for field in ("time", "balance", "equity", "credit"):
        assert np.array_equal(getattr(snaps, field)[by_time], getattr(fast_snaps, field)[fast_by_time]), field


@pytest.mark.django_db
def test_statistics_for_account_costs_one_query_whatever_the_number_of_deals(
    owner, mixed_account, django_assert_num_queries
):
    empty, small = _account(owner), _account(owner)
    _mixed_history(small, positions=3)
    assert Deal.objects.filter(account=small).count() < 10 < 250 < Deal.objects.filter(account=mixed_account).count()
    statistics_for_account(empty)  # the owner's plan (history window, advanced analytics) is cached from here on
    for account in (empty, small, mixed_account):
        for window in ({}, {"date_from": date(2026, 1, 20), "date_to": date(2026, 2, 10)}):
            with django_assert_num_queries(1):
                statistics_for_account(account, **window)
