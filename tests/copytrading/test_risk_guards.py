"""A follower's risk guards per copy link: skip a copy below the symbol's minimum lot, the equity stop (stop, close,
resume, audit), and the slippage and delay report per link (API and pages)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.test import Client

from accounts.models import Deal, TradingAccount
from copytrading.choices import CopyStatus
from copytrading.forms import CopyLinkForm
from copytrading.hooks import on_ea_state
from copytrading.models import CopiedPosition, CopyEvent, CopyLink, LinkStop
from copytrading.sizing import SizingSkip, VolumeRules, copy_volume
from copytrading.slippage import percentile

from .factories import NOW, pos, state
from .test_engine import beat, commands_for, execute, link

pytestmark = pytest.mark.django_db
STD = VolumeRules(D("0.01"), D("0.01"), D("100"))


def slave_beat(slave, equity, positions=()):
    """One beat of the slave with this equity (previous state: the same positions)."""
    on_ea_state(state(slave.pk, positions, equity=equity), state(slave.pk, positions, equity=equity))


def refreshed(lnk) -> CopyLink:
    lnk.refresh_from_db()
    return lnk


# --- (a) below the symbol's minimum ----------------------------------------------------------------------------


def test_sizing_raises_to_the_minimum_or_skips_when_asked():
    assert copy_volume("multiplier", rules=STD, master_volume=D("0.01"), multiplier=D("0.1")) == D("0.01")
    with pytest.raises(SizingSkip) as skipped:
        copy_volume("multiplier", rules=STD, master_volume=D("0.01"), multiplier=D("0.1"), skip_below_minimum=True)
    assert skipped.value.code == "below_min_volume" and "minimum 0.01" in skipped.value.message
    # At or above the minimum after rounding: copied as usual.
    assert copy_volume("multiplier", rules=STD, master_volume=D("0.15"), multiplier=D("0.1"),
                       skip_below_minimum=True) == D("0.01")  # fmt: skip


def test_a_tiny_copy_is_raised_to_the_minimum_by_default(owner, master, slave):
    link(owner, master, slave, multiplier=D("0.001"))
    beat(master, [], [pos(1, "BTCUSD.pro", volume="1.00")])
    [command] = commands_for(slave)
    assert D(command.params["volume"]) == D("0.01")


def test_with_the_guard_a_tiny_copy_is_skipped_and_logged(owner, master, slave):
    lnk = link(owner, master, slave, multiplier=D("0.001"), skip_below_min_volume=True)
    beat(master, [], [pos(1, "BTCUSD.pro", volume="1.00")])
    assert commands_for(slave) == []
    event = CopyEvent.objects.get(link=lnk)
    assert (event.status, event.reason_code, event.master_ticket) == ("skipped", "below_min_volume", 1)
    assert "below the symbol's minimum 0.01" in event.reason
    beat(master, [], [pos(2, "BTCUSD.pro", volume="20.00")])  # 0.02 lots: above the minimum, copied
    [command] = commands_for(slave)
    assert D(command.params["volume"]) == D("0.02")


# --- (b) the equity stop -----------------------------------------------------------------------------------------


def test_an_amount_stop_stops_the_link_once_and_it_opens_nothing_more(owner, master, slave):
    lnk = link(owner, master, slave, equity_stop=D("4000"))
    slave_beat(slave, "4000.01")
    assert refreshed(lnk).stopped_at is None
    slave_beat(slave, "4000.00")
    lnk = refreshed(lnk)
    assert lnk.stopped_at is not None and "4000.00 fell to or below 4000" in lnk.stop_reason
    slave_beat(slave, "3900")  # still below: no second stop
    [stop] = LinkStop.objects.filter(link=lnk)
    assert (stop.action, stop.equity, stop.level, stop.closed_copies) == ("stopped", D("4000.00"), D("4000"), 0)
    beat(master, [], [pos(1, "BTCUSD.pro")])
    assert commands_for(slave) == []
    assert CopyEvent.objects.get(link=lnk).reason_code == "equity_stop"


def test_a_percent_stop_is_measured_from_the_equity_when_the_link_started(owner, master, slave):
    lnk = link(owner, master, slave, equity_stop_percent=D("80"))
    assert (lnk.start_equity, lnk.equity_stop_level) == (D("5000"), D("4000.00"))
    slave_beat(slave, "4100")
    assert refreshed(lnk).stopped_at is None
    slave_beat(slave, "3999.99")
    assert refreshed(lnk).stopped_at is not None and "80% of the start equity 5000" in lnk.stop_reason


def test_the_slaves_last_figures_stop_copies_before_its_beat_does(owner, master, slave):
    lnk = link(owner, master, slave, equity_stop=D("4000"))
    TradingAccount.objects.filter(pk=slave.pk).update(equity=D("3500"))
    beat(master, [], [pos(1, "BTCUSD.pro")])
    assert commands_for(slave) == []
    assert "3500" in CopyEvent.objects.get(link=lnk, reason_code="equity_stop").reason


def _open_copy(master, slave, ticket=1):
    beat(master, [], [pos(ticket, "BTCUSD.pro")])
    [command] = commands_for(slave, kind="open_market")
    execute(command, position=7000 + ticket, order=7000 + ticket, volume="1.00")
    return CopiedPosition.objects.get(open_command_id=command.id)


def test_the_stop_closes_the_links_copies_when_asked(owner, master, slave):
    lnk = link(owner, master, slave, equity_stop=D("4000"), equity_stop_close=True)
    row = _open_copy(master, slave)
    slave_position = pos(7001, "BTCUSD")
    slave_beat(slave, "3000", [slave_position])
    [close] = commands_for(slave, kind="close")
    assert close.params == {"ticket": 7001} and close.origin_ref == f"copy-link:{lnk.id}"
    assert LinkStop.objects.get(link=lnk).closed_copies == 1
    execute(close)
    row.refresh_from_db()
    assert row.status == CopyStatus.CLOSED  # ours, not "closed by hand"
    slave_beat(slave, "3000", [slave_position])  # the same beat again: nothing more
    assert len(commands_for(slave, kind="close")) == 1


def test_without_the_close_option_a_stopped_link_keeps_following_the_masters_close(owner, master, slave):
    lnk = link(owner, master, slave, equity_stop=D("4000"))
    _open_copy(master, slave)
    slave_beat(slave, "3000", [pos(7001, "BTCUSD")])
    assert refreshed(lnk).stopped_at is not None and commands_for(slave, kind="close") == []
    beat(master, [pos(1, "BTCUSD.pro")], [])
    [close] = commands_for(slave, kind="close")
    assert close.params == {"ticket": 7001}


def test_resuming_in_the_page_copies_again_from_the_equity_now(owner, master, slave):
    lnk = link(owner, master, slave, equity_stop_percent=D("80"))
    slave_beat(slave, "3900")
    assert refreshed(lnk).stopped_at is not None
    TradingAccount.objects.filter(pk=slave.pk).update(equity=D("3900"))
    client = Client()
    client.force_login(owner)
    page = client.get("/copy/").content.decode()
    assert "paused" in page and "Resume" in page and "Equity stop" in page
    assert client.post(f"/copy/links/{lnk.pk}/", {"action": "resume"}).status_code == 302
    lnk = refreshed(lnk)
    assert (lnk.stopped_at, lnk.stop_reason, lnk.start_equity, lnk.equity_stop_level) == (
        None, "", D("3900"), D("3120.00"),
    )  # fmt: skip
    assert list(LinkStop.objects.filter(link=lnk).values_list("action", "actor")) == [
        ("resumed", owner.pk),
        ("stopped", None),
    ]
    beat(master, [], [pos(5, "BTCUSD.pro")])
    assert len(commands_for(slave, kind="open_market")) == 1


def test_resume_through_the_api_and_the_audit_list(owner_client, outsider_client, owner, master, slave):
    lnk = link(owner, master, slave, equity_stop=D("4000"))
    slave_beat(slave, "100")
    assert outsider_client.post(f"/api/copy/links/{lnk.pk}/resume").status_code == 404
    assert outsider_client.get("/api/copy/link-stops").json()["results"] == []
    data = owner_client.get(f"/api/copy/links/{lnk.pk}").json()
    assert data["stopped_at"] and data["equity_stop_level"] == "4000.00" and data["equity_stop"] == "4000.00"
    response = owner_client.post(f"/api/copy/links/{lnk.pk}/resume")
    assert response.status_code == 200 and response.json()["stopped_at"] is None
    actions = [row["action"] for row in owner_client.get("/api/copy/link-stops").json()["results"]]
    assert actions == ["resumed", "stopped"]


def test_the_api_sets_the_guards_and_refuses_bad_values(owner_client, owner, master, slave):
    lnk = link(owner, master, slave)
    response = owner_client.patch(
        f"/api/copy/links/{lnk.pk}",
        {"skip_below_min_volume": True, "equity_stop_percent": "75", "equity_stop_close": True},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["equity_stop_level"] == "3750.00" and response.json()["skip_below_min_volume"] is True
    for bad in ({"equity_stop_percent": "150"}, {"equity_stop": "-5"}, {"equity_stop": "abc"}):
        response = owner_client.patch(f"/api/copy/links/{lnk.pk}", bad, format="json")
        assert response.status_code == 400 and "error" in response.json()


def test_the_form_asks_for_a_level_before_closing_on_it(owner, master, slave):
    form = CopyLinkForm(
        {"master": str(master.pk), "slave": str(slave.pk), "sizing_mode": "multiplier", "multiplier": "1",
         "max_delay_seconds": "30", "max_slippage_points": "20", "priority": "100", "equity_stop_close": "on"},
        masters=[master], slaves=[slave],
    )  # fmt: skip
    assert not form.is_valid() and "equity_stop_close" in form.errors


# --- (c) slippage and delay ----------------------------------------------------------------------------------------


def test_percentiles_are_nearest_rank():
    values = [D(v) for v in range(1, 21)]
    assert (percentile(values, 50), percentile(values, 95), percentile([D(7)], 95)) == (D(10), D(19), D(7))
    assert percentile([], 50) is None


def _deal(account, ticket, position, price, time, *, comment="", deal_type=0, entry=0):
    Deal.objects.create(account=account, ticket=ticket, position_id=position, price=D(price), time=time,
                        deal_type=deal_type, entry=entry, symbol="BTCUSD", volume=D("1"), comment=comment)  # fmt: skip


@pytest.fixture
def copied(owner, master, slave):
    """Three copies of a link with both fills synced: slippage 2, 5 and -1 points, delays 0.2, 0.5 and 1.0 s."""
    lnk = link(owner, master, slave)
    cases = [(1, "buy", "65000.00", "65000.02", 0.2), (2, "sell", "64000.00", "63999.95", 0.5),
             (3, "buy", "65100.00", "65099.99", 1.0)]  # fmt: skip
    for ticket, side, master_price, slave_price, delay in cases:
        copy_id = f"cp1.{ticket}"
        CopiedPosition.objects.create(
            link=lnk, slave_account=slave, master_ticket=ticket, master_symbol="BTCUSD.pro", master_volume=D("1"),
            slave_ticket=9000 + ticket, slave_symbol="BTCUSD", slave_side=side, slave_volume=D("1"),
            status=CopyStatus.OPEN, copy_id=copy_id,
        )  # fmt: skip
        at = NOW + timedelta(minutes=ticket)
        _deal(master, 100 + ticket, ticket, master_price, at)
        _deal(master, 200 + ticket, ticket, "1", at + timedelta(hours=1), entry=1)  # the close: not the fill
        _deal(slave, 300 + ticket, 9000 + ticket, slave_price, at + timedelta(seconds=delay), comment=copy_id)
    # A copy whose slave fill is not synced yet is left out.
    CopiedPosition.objects.create(
        link=lnk, slave_account=slave, master_ticket=4, master_symbol="BTCUSD.pro", master_volume=D("1"),
        slave_ticket=9004, slave_symbol="BTCUSD", slave_side="buy", slave_volume=D("1"), status=CopyStatus.OPEN,
        copy_id="cp1.4",
    )  # fmt: skip
    return lnk


def test_the_api_reports_each_copys_fills_and_the_links_percentiles(owner_client, outsider_client, copied):
    data = owner_client.get(f"/api/copy/links/{copied.pk}/slippage").json()
    assert data["copies"] == 3
    by_copy = {fill["copy_id"]: fill for fill in data["fills"]}
    assert D(by_copy["cp1.1"]["slippage_points"]) == D("2")  # bought 0.02 higher: 2 points worse
    assert D(by_copy["cp1.2"]["slippage_points"]) == D("5")  # sold 0.05 lower: 5 points worse
    assert D(by_copy["cp1.3"]["slippage_points"]) == D("-1")  # bought 0.01 lower: 1 point better
    assert D(by_copy["cp1.2"]["delay_seconds"]) == D("0.5") and D(by_copy["cp1.2"]["master_price"]) == D("64000")
    assert (D(data["slippage_points_p50"]), D(data["slippage_points_p95"])) == (D("2"), D("5"))
    assert (D(data["delay_seconds_p50"]), D(data["delay_seconds_p95"])) == (D("0.5"), D("1"))
    [summary] = owner_client.get("/api/copy/slippage").json()
    assert summary["link"] == copied.pk and summary["copies"] == 3 and "fills" not in summary
    assert outsider_client.get(f"/api/copy/links/{copied.pk}/slippage").status_code == 404
    assert outsider_client.get("/api/copy/slippage").json() == []


def test_the_pages_show_the_percentiles_and_the_fills(owner, outsider, copied):
    client = Client()
    client.force_login(owner)
    links_page = client.get("/copy/").content.decode()
    assert "2.0 / 5.0 pts" in links_page and "0.500 / 1.000 s" in links_page
    page = client.get(f"/copy/links/{copied.pk}/fills/").content.decode()
    assert "cp1.2" in page and "64000" in page and "63999.95" in page
    other = Client()
    other.force_login(outsider)
    assert other.get(f"/copy/links/{copied.pk}/fills/").status_code == 404


def test_the_schema_documents_the_report_and_the_resume(owner_client):
    schema = owner_client.get("/api/schema/", {"format": "json"}).json()
    paths = {path.replace("{id}", "{pk}") for path in schema["paths"]}
    assert "/api/copy/links/{pk}/slippage" in paths and "/api/copy/slippage" in paths, sorted(paths)
    assert "/api/copy/links/{pk}/resume" in paths and "/api/copy/link-stops" in paths
    assert "slippage_points_p95" in schema["components"]["schemas"]["LinkSlippageDetail"]["properties"]
