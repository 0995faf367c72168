"""The copy link form: the fields of the chosen sizing mode, validation per mode, and the volume preview.

Reported fault: the form showed every field of every sizing mode at once, with no preview of what a master
trade would become.
"""

from __future__ import annotations

import re
from decimal import Decimal as D

import pytest
from django.test import Client

from copytrading.models import CopyLink

pytestmark = pytest.mark.django_db
PREVIEW = "/copy/links/preview/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _form(master, slave, **changes) -> dict:
    data = {
        "master": str(master.pk),
        "slave": str(slave.pk),
        "sizing_mode": "multiplier",
        "multiplier": "1",
        "fixed_volume": "0.01",
        "risk_percent": "1",
        "no_sl": "skip",
        "default_sl_points": "0",
        "copy_sltp": "on",
        "max_delay_seconds": "30",
        "max_slippage_points": "20",
        "priority": "100",
        "sample_symbol": "BTCUSD",
        "sample_volume": "1.00",
        "sample_sl_points": "0",
    }
    data.update(changes)
    return data


def _rows(html: str) -> dict[str, str]:
    """Each sizing field's row: the modes it is shown under."""
    return dict(
        (name, modes) for modes, name in re.findall(r'data-sizing-modes="([^"]*)">\s*<label for="id_(\w+)"', html)
    )


def test_each_sizing_field_is_tied_to_the_modes_that_read_it(owner, master, slave):
    html = _client(owner).get("/copy/").content.decode()
    rows = _rows(html)
    assert rows["fixed_volume"] == "fixed"
    assert rows["risk_percent"] == rows["no_sl"] == rows["default_sl_points"] == "risk_percent"
    assert set(rows["multiplier"].split()) == {"multiplier", "balance_ratio", "equity_ratio", "free_margin_ratio"}
    assert "copytrading/link_form.js" in html
    assert f'hx-post="{PREVIEW}"' in html and 'id="link-preview"' in html


def test_fields_the_mode_does_not_read_are_neither_checked_nor_stored(owner, master, slave):
    data = _form(master, slave, sizing_mode="fixed", fixed_volume="0.05", multiplier="abc", risk_percent="")
    response = _client(owner).post("/copy/", data)
    assert response.status_code == 302
    link = CopyLink.objects.get()
    assert link.fixed_volume == D("0.05") and link.multiplier == D("1") and link.risk_percent == D("1")


def test_a_missing_field_of_the_mode_is_an_error_next_to_it(owner, master, slave):
    response = _client(owner).post("/copy/", _form(master, slave, sizing_mode="risk_percent", risk_percent=""))
    assert response.status_code == 200 and not CopyLink.objects.exists()
    html = response.content.decode()
    row = html[html.index('<label for="id_risk_percent"') :]
    row = row[: row.index("</div>")]
    assert "Required with the sizing mode" in row


def test_default_sl_needs_a_distance(owner, master, slave):
    data = _form(master, slave, sizing_mode="risk_percent", no_sl="default", default_sl_points="0")
    response = _client(owner).post("/copy/", data)
    assert response.status_code == 200 and b"Give the SL distance to assume" in response.content


def test_preview_sizes_a_balance_ratio_trade(owner, master, slave):
    # Master balance 100,000, slave 5,000: 1 lot on the master is 0.05 lot on the slave.
    response = _client(owner).post(PREVIEW, _form(master, slave, sizing_mode="balance_ratio"))
    assert response.status_code == 200
    text = re.sub(r"\s+", " ", response.content.decode())
    assert re.search(r"<strong>0\.05</strong> lot BTCUSD\S* on the slave", text), text


def test_preview_comes_from_the_engines_sizing(owner, master, slave, monkeypatch):
    import copytrading.planning

    monkeypatch.setattr(copytrading.planning, "copy_volume", lambda *args, **kwargs: D("7.77"))
    response = _client(owner).post(PREVIEW, _form(master, slave))
    assert b"<strong>7.77</strong>" in response.content


def test_preview_says_why_the_engine_would_skip(owner, master, slave):
    data = _form(master, slave, sizing_mode="risk_percent", sample_sl_points="0")
    response = _client(owner).post(PREVIEW, data)
    assert b"would skip this trade" in response.content and b"stop loss" in response.content
    with_sl = _client(owner).post(PREVIEW, {**data, "sample_sl_points": "5000"})
    assert b"lot BTCUSD" in with_sl.content


def test_preview_of_an_invalid_form_lists_the_errors_not_a_500(owner, outsider, master, slave):
    response = _client(outsider).post(PREVIEW, _form(master, slave))
    assert response.status_code == 200 and b"Select a valid choice" in response.content
    assert _client(owner).post(PREVIEW, {"sample_volume": "x"}).status_code == 200
    assert _client(owner).get(PREVIEW).status_code == 405
