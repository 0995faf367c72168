"""The finance report: credit granted, converted, removed and the cost of bonuses, by period and campaign.

The money moves through the real bonus services against the simulated MT5 (deposit triggers, a cancellation,
a forced conversion); only the day each operation was done is moved, to place it in the range under test.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from accounts.choices import Role
from bonuses import reports
from bonuses.choices import BonusType, OperationKind
from bonuses.models import BonusOperation
from bonuses.services.ending import bonus_cancel, bonus_force_convert
from bonuses.services.triggers import trigger_deposit
from config.errors import ServiceError
from mt5bridge.simulated import deposit
from tests.personas import api_client_for, staff_user

from .conftest import make_account, make_campaign

pytestmark = pytest.mark.django_db

UTC = ZoneInfo("UTC")


def _grant(campaign_percent, amount):
    login = make_account(balance="0")
    deposit(login, D(amount))
    (result,) = trigger_deposit(login=login, amount=D(amount))
    assert result.bonus.campaign.bonus_percent == D(campaign_percent)
    return result.bonus


def _done_on(bonus, when: datetime, kinds=None):
    """Place the bonus's operations (all, or these kinds) on ``when``."""
    ops = BonusOperation.objects.filter(bonus=bonus)
    if kinds:
        ops = ops.filter(kind__in=kinds)
    ops.update(done_at=when)


def _report(**params) -> dict:
    return reports.finance(reports.finance_query(params))


def test_granted_removed_converted_and_cost_are_summed_per_day():
    welcome = make_campaign(name="Welcome", bonus_percent=D("50"))
    b1 = _grant("50", "1000")  # 500 credit
    b2 = _grant("50", "300")  # 150 credit
    bonus_cancel(actor="test", bonus=b2)  # 150 credit taken back
    welcome.status = "ended"
    welcome.save(update_fields=["status"])
    make_campaign(name="Convert", bonus_type=BonusType.CONVERTIBLE, bonus_percent=D("10"))
    b3 = _grant("10", "1000")  # 100 credit
    bonus_force_convert(actor="test", bonus=b3)  # 100 credit out, 100 balance in
    _done_on(b1, datetime(2026, 3, 2, 10, tzinfo=UTC))
    _done_on(b2, datetime(2026, 3, 2, 11, tzinfo=UTC), [OperationKind.CREDIT_IN])
    _done_on(b2, datetime(2026, 3, 3, 9, tzinfo=UTC), [OperationKind.CREDIT_OUT])
    _done_on(b3, datetime(2026, 3, 3, 12, tzinfo=UTC))

    report = _report(start="2026-03-01", end="2026-03-31", period="day")

    by_day = {row["period"]: row for row in report["rows"]}
    assert list(by_day) == ["2026-03-02", "2026-03-03"]  # days with no movement are left out
    assert by_day["2026-03-02"] == {
        "period": "2026-03-02", "campaign_id": None, "campaign": "", "bonuses": 2, "granted": "650.00",
        "converted": "0.00", "removed": "0.00", "corrections": "0.00", "cost": "0.00", "net_credit": "650.00",
    }  # fmt: skip
    third = by_day["2026-03-03"]
    assert (third["granted"], third["removed"], third["converted"], third["cost"]) == (
        "100.00",
        "150.00",
        "100.00",
        "100.00",
    )
    # 100 granted - 150 removed - 100 converted out of credit
    assert third["net_credit"] == "-150.00"
    assert report["totals"] == {
        "bonuses": 3, "granted": "750.00", "converted": "100.00", "removed": "150.00", "corrections": "0.00",
        "cost": "100.00", "net_credit": "500.00",
    }  # fmt: skip


def test_weeks_start_on_monday_and_months_sum_the_whole_month():
    make_campaign(bonus_percent=D("10"))
    bonuses = [_grant("10", amount) for amount in ("1000", "2000", "3000", "4000")]
    days = [(2026, 3, 2), (2026, 3, 8), (2026, 3, 9), (2026, 4, 1)]  # Mon, Sun, next Mon, April
    for bonus, day in zip(bonuses, days, strict=True):
        _done_on(bonus, datetime(*day, 12, tzinfo=UTC))

    weeks = _report(start="2026-03-01", end="2026-04-30", period="week")["rows"]
    assert [(r["period"], r["granted"]) for r in weeks] == [
        ("2026-03-02", "300.00"),
        ("2026-03-09", "300.00"),
        ("2026-03-30", "400.00"),
    ]
    months = _report(start="2026-03-01", end="2026-04-30", period="month")["rows"]
    assert [(r["period"], r["granted"], r["bonuses"]) for r in months] == [
        ("2026-03-01", "600.00", 3),
        ("2026-04-01", "400.00", 1),
    ]
    whole = _report(start="2026-03-01", end="2026-04-30", period="all")["rows"]
    assert [(r["period"], r["granted"]) for r in whole] == [("2026-03-01", "1000.00")]


def test_per_campaign_rows_keep_each_campaigns_money_apart():
    first = make_campaign(name="Spring", bonus_percent=D("20"))
    a = _grant("20", "1000")
    first.status = "ended"
    first.save(update_fields=["status"])
    second = make_campaign(name="Summer", bonus_percent=D("30"))
    b = _grant("30", "1000")
    for bonus in (a, b):
        _done_on(bonus, datetime(2026, 5, 10, 8, tzinfo=UTC))

    rows = _report(start="2026-05-01", end="2026-05-31", period="month", by="campaign")["rows"]

    assert [(r["campaign_id"], r["campaign"], r["granted"]) for r in rows] == [
        (first.pk, "Spring", "200.00"),
        (second.pk, "Summer", "300.00"),
    ]


def test_both_ends_of_the_range_are_whole_days_in_the_server_time_zone(settings):
    settings.TIME_ZONE = "Europe/Berlin"  # UTC+2 in June
    make_campaign(bonus_percent=D("10"))
    berlin = ZoneInfo("Europe/Berlin")
    edges = {
        "before_start": datetime(2026, 5, 31, 23, 59, 59, tzinfo=berlin),
        "start": datetime(2026, 6, 1, 0, 0, 0, tzinfo=berlin),  # 2026-05-31 22:00 UTC
        "end": datetime(2026, 6, 30, 23, 59, 59, tzinfo=berlin),
        "after_end": datetime(2026, 7, 1, 0, 0, 0, tzinfo=berlin),
    }
    amounts = {"before_start": "1000", "start": "2000", "end": "3000", "after_end": "4000"}
    for name, when in edges.items():
        _done_on(_grant("10", amounts[name]), when)

    report = _report(start="2026-06-01", end="2026-06-30", period="day")

    assert report["totals"]["granted"] == "500.00"  # 200 on the first day + 300 on the last, nothing else
    assert [r["period"] for r in report["rows"]] == ["2026-06-01", "2026-06-30"]
    assert report["time_zone"] == "Europe/Berlin"


def test_operations_not_done_on_mt5_are_not_counted():
    make_campaign(bonus_percent=D("50"))
    bonus = _grant("50", "1000")
    _done_on(bonus, datetime(2026, 2, 2, tzinfo=UTC))
    BonusOperation.objects.filter(bonus=bonus).update(status="failed")
    assert _report(start="2026-02-01", end="2026-02-28")["rows"] == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"start": "2026-03-10", "end": "2026-03-01"}, "invalid_range"),
        ({"start": "2026-02-30"}, "invalid_range"),
        ({"start": "yesterday"}, "invalid_range"),
        ({"start": "2000-01-01", "end": "2026-01-01"}, "invalid_range"),
        ({"period": "year"}, "invalid_period"),
        ({"by": "login"}, "invalid_group"),
    ],
)
def test_a_bad_range_or_grouping_is_refused_with_its_reason(params, code):
    with pytest.raises(ServiceError) as exc:
        reports.finance_query(params)
    assert exc.value.code == code
    response = api_client_for(staff_user(Role.READ_ONLY)).get(reverse("bonus-report-finance"), params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_a_single_day_range_and_the_default_last_thirty_days():
    query = reports.finance_query({"start": "2026-03-05", "end": "2026-03-05"})
    assert (query.since.isoformat(), query.until.isoformat()) == (
        "2026-03-05T00:00:00+00:00",
        "2026-03-06T00:00:00+00:00",
    )
    default = reports.finance_query({})
    assert (default.end - default.start).days == 29 and default.period == "day"


def test_the_api_answers_read_only_and_refuses_support_and_campaign_managers():
    make_campaign(bonus_percent=D("50"))
    _done_on(_grant("50", "1000"), datetime(2026, 3, 2, 10, tzinfo=UTC))
    url = reverse("bonus-report-finance")
    params = {"start": "2026-03-01", "end": "2026-03-31", "period": "month"}
    body = api_client_for(staff_user(Role.READ_ONLY)).get(url, params).json()
    assert body["rows"][0]["granted"] == "500.00" and body["totals"]["granted"] == "500.00"
    for role in (Role.SUPPORT_AGENT, Role.CAMPAIGN_MANAGER):
        assert api_client_for(staff_user(role)).get(url, params).status_code == 403


def test_csv_export_has_one_row_per_period_and_campaign_with_exact_decimals():
    make_campaign(name='=HYPERLINK("http://x")', bonus_percent=D("33.33"))
    _done_on(_grant("33.33", "1000"), datetime(2026, 3, 2, 10, tzinfo=UTC))
    response = api_client_for(staff_user(Role.SUPER_ADMIN)).get(
        reverse("bonus-report-finance-export"),
        {"start": "2026-03-01", "end": "2026-03-31", "period": "day", "by": "campaign"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    assert 'filename="bonus-finance-20260301-20260331-day.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 1
    row = rows[0]
    assert row["period"] == "2026-03-02" and row["granted"] == "333.30" and row["net_credit"] == "333.30"
    assert row["campaign"].startswith("'=")  # kept as text by a spreadsheet, not run as a formula
    plain = api_client_for(staff_user(Role.READ_ONLY)).get(
        reverse("bonus-report-finance-export"), {"start": "2026-03-01", "end": "2026-03-31"}
    )
    header = plain.content.decode().splitlines()[0]
    assert header == "period,bonuses,granted,converted,removed,corrections,cost,net_credit"


def test_the_admin_page_shows_the_range_and_exports_it_for_read_only_not_support(client):
    make_campaign(bonus_percent=D("50"))
    _done_on(_grant("50", "1000"), datetime(2026, 3, 2, 10, tzinfo=UTC))
    url = reverse("admin:bonuses_finance_report")
    params = {"start": "2026-03-01", "end": "2026-03-31", "period": "week"}
    client.force_login(staff_user(Role.READ_ONLY))

    page = client.get(url, params)
    assert page.status_code == 200
    assert "<td>2026-03-02</td><td>1</td><td>500.00</td>" in page.content.decode()
    bad = client.get(url, {"start": "2026-03-31", "end": "2026-03-01"})
    assert bad.status_code == 400 and "start must be on or before end" in bad.content.decode()
    export = client.get(reverse("admin:bonuses_finance_export"), params)
    assert export["Content-Type"] == "text/csv"
    assert export.content.decode().splitlines()[1] == "2026-03-02,1,500.00,0.00,0.00,0.00,0.00,500.00"

    client.force_login(staff_user(Role.SUPPORT_AGENT))
    assert client.get(url, params).status_code == 403
    assert client.get(reverse("admin:bonuses_finance_export"), params).status_code == 403
