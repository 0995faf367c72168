"""Charts over the whole history: balance from the deals, equity from snapshots (estimated between), growth, drawdown.

Reported fault: on range "All" the account page's equity & balance chart (and the analytics drawdown chart)
covered only the snapshots since the run started, not the five months of deals before; there was no growth curve.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.urls import reverse
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.analytics import tables as an
from accounts.analytics.statistics import compute_statistics
from accounts.analytics.tables import DealTable, SnapshotTable
from accounts.models import AccountSnapshot, Deal

T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)


def _deal(ticket, time, deal_type, profit, **extra) -> dict:
    row = {"ticket": ticket, "time": time, "deal_type": deal_type, "profit": D(profit), "symbol": "EURUSD"}
    row.update(extra)
    return row


def _five_months_then_forty_minutes(now: datetime):
    """A deposit five months ago, a trade a month, and snapshots only over the last 40 minutes."""
    start = now - timedelta(days=150)
    deals = [_deal(1, start, an.BALANCE, "1000")]
    for i in range(1, 5):
        deals.append(_deal(1 + i, start + timedelta(days=30 * i), an.SELL, "50", entry=1, position=i))
    snaps = [
        {"taken_at": now - timedelta(minutes=40 - m), "balance": D("1200"), "equity": D("1210"), "credit": D("0")}
        for m in range(0, 40, 5)
    ]
    return deals, snaps


def test_all_range_starts_at_the_first_deposit_not_at_the_first_snapshot():
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    deals, snaps = _five_months_then_forty_minutes(now)
    series = compute_statistics(DealTable.from_records(deals), SnapshotTable.from_records(snaps))["series"]
    first = an.iso(deals[0]["time"].timestamp())
    assert series["equity"][0][0] == first and series["equity"][0][2] == "1000.00"
    assert series["drawdown"][0][0] == first
    assert series["growth"][0] == [first, 0.0, 0.0]
    # Before the snapshots the equity is estimated (flagged); at the snapshots it is measured.
    assert all(row[3] for row in series["equity"][:5])
    assert [row[1] for row in series["equity"] if not row[3]] == ["1210.00"] * 8
    # Balance from the deals: 1000 + 4 x 50.
    assert series["equity"][-1][2] == "1200.00"
    assert series["growth"][-1][1] == pytest.approx(20.0)


def test_equity_between_snapshots_interpolates_the_floating_profit():
    deals = [_deal(1, T0, an.BALANCE, "1000"), _deal(2, T0 + timedelta(hours=2), an.SELL, "100", entry=1)]
    snaps = [
        {"taken_at": T0 + timedelta(hours=1), "balance": D("1000"), "equity": D("1040"), "credit": D("0")},
        {"taken_at": T0 + timedelta(hours=3), "balance": D("1100"), "equity": D("1120"), "credit": D("0")},
    ]
    rows = compute_statistics(DealTable.from_records(deals), SnapshotTable.from_records(snaps))["series"]["equity"]
    # At 2 h: balance 1100 + floating halfway between 40 and 20 = 1130, estimated.
    assert rows[2] == [an.iso((T0 + timedelta(hours=2)).timestamp()), "1130.00", "1100.00", True]


# --- Growth = time-weighted return, computed independently ---------------------------------------

_step = st.one_of(
    st.tuples(st.just("deposit"), st.integers(min_value=1, max_value=500_000)),
    st.tuples(st.just("withdraw"), st.floats(min_value=0.0, max_value=0.9)),
    st.tuples(st.just("profit"), st.floats(min_value=-0.9, max_value=2.0)),
)


def _independent_twr(steps: list[tuple[str, object]], first_deposit: int) -> D:
    """Myfxbook's gain: each deposit or withdrawal closes a sub-period; gain = product of (end / start) - 1."""
    balance = D(first_deposit).scaleb(-2)
    period_start, product = balance, D(1)
    for kind, cents in steps:
        amount = D(cents).scaleb(-2)
        if kind == "profit":
            balance += amount
            continue
        product *= balance / period_start
        balance += amount
        period_start = balance
    product *= balance / period_start
    return (product - 1) * 100


@settings(max_examples=60, deadline=None)
@given(first=st.integers(min_value=10_000, max_value=10_000_000), steps=st.lists(_step, max_size=60))
def test_growth_curve_ends_at_the_time_weighted_return(first, steps):
    deals, resolved, balance = [_deal(1, T0, an.BALANCE, D(first).scaleb(-2))], [], first
    for i, (kind, value) in enumerate(steps, start=2):
        if kind == "deposit":
            cents = value
        elif kind == "withdraw":
            cents = -int(balance * value)
        else:
            cents = int(balance * value)
        if balance + cents <= 0:
            continue
        balance += cents
        resolved.append(("profit" if kind == "profit" else "flow", cents))
        deal_type = an.SELL if kind == "profit" else an.BALANCE
        deals.append(_deal(i, T0 + timedelta(hours=i), deal_type, D(cents).scaleb(-2), entry=1))
    result = compute_statistics(DealTable.from_records(deals))
    expected = _independent_twr(resolved, first)
    assert result["series"]["growth"][-1][1] == pytest.approx(float(expected), abs=1e-3)
    assert result["series"]["growth"][-1][1] == result["summary"]["gain_pct"]
    assert result["series"]["equity"][-1][2] == str(D(balance).scaleb(-2))


# --- The pages and the range endpoint ------------------------------------------------------------


@pytest.fixture
def history(owned_account):
    now = timezone.now().replace(microsecond=0)
    deals, snaps = _five_months_then_forty_minutes(now)
    Deal.objects.bulk_create(
        Deal(account=owned_account, **{k: v for k, v in row.items() if k != "position"}) for row in deals
    )
    AccountSnapshot.objects.bulk_create(AccountSnapshot(account=owned_account, **row) for row in snaps)
    return owned_account, deals[0]["time"], now


def _json_script(html: str, element_id: str):
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert match, f"no {element_id} on the page"
    return json.loads(match.group(1))


def test_account_page_all_range_covers_the_first_deal(client, owner, history):
    account, first, _ = history
    client.force_login(owner)
    html = client.get(reverse("web-account-detail", args=[account.pk])).content.decode()
    rows = _json_script(html, "equity-data")
    assert rows[0][0] == an.iso(first.timestamp())
    assert 'data-range="1W"' in html and reverse("web-account-chart", args=[account.pk]) in html


def test_analytics_page_has_growth_and_a_drawdown_over_the_whole_history(client, owner, history):
    account, first, _ = history
    client.force_login(owner)
    html = client.get(reverse("web-account-analytics", args=[account.pk])).content.decode()
    series = _json_script(html, "analytics-series")
    assert 'id="growth-chart"' in html
    assert series["growth"][0][0] == series["drawdown"][0][0] == an.iso(first.timestamp())
    assert series["growth"][-1][1] == pytest.approx(20.0)


@pytest.mark.parametrize(("name", "days"), [("1D", 1), ("1W", 7), ("3M", 89)])
def test_each_range_spans_what_its_name_says(client, owner, history, name, days):
    account, first, now = history
    client.force_login(owner)
    body = client.get(reverse("web-account-chart", args=[account.pk]), {"range": name}).json()
    start, end = datetime.fromisoformat(body["start"]), datetime.fromisoformat(body["end"])
    assert timedelta(days=days) <= end - start <= timedelta(days=days + 3)
    assert end >= now
    assert body["equity"][0][0] == body["start"]  # carried to the range's start
    assert body["growth"][0][1] == 0.0  # growth starts afresh at the range's start
    assert all(row[0] >= body["start"] for row in body["equity"])


def test_all_range_endpoint_starts_at_the_first_deal(client, owner, history):
    account, first, _ = history
    client.force_login(owner)
    body = client.get(reverse("web-account-chart", args=[account.pk]), {"range": "All"}).json()
    assert body["equity"][0][0] == an.iso(first.timestamp())


def test_unknown_range_is_a_400_and_an_outsider_a_404(client, owner, outsider, history):
    account = history[0]
    client.force_login(owner)
    response = client.get(reverse("web-account-chart", args=[account.pk]), {"range": "2D"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_range"
    client.force_login(outsider)
    assert client.get(reverse("web-account-chart", args=[account.pk])).status_code == 404
