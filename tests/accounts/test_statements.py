"""Statement import: parsing the terminal's HTML and XLSX reports, dedup by ticket, one transaction, API."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import Deal, StatementImport, TradingAccount
from accounts.statements.importing import statement_import
from accounts.statements.parsing import parse_statement
from accounts.statements.upload import StatementInvalid
from accounts.vault import encrypt
from tests.accounts.fixtures.make_reports import DEALS, LOGIN, html_report, xlsx_report

FIXTURES = Path(__file__).parent / "fixtures"
HTML = (FIXTURES / "mt5_report.html").read_bytes()
XLSX = (FIXTURES / "mt5_report.xlsx").read_bytes()


@pytest.fixture
def report_account(owner) -> TradingAccount:
    """An account whose login matches the sample reports (no MT5 needed to import a file)."""
    return TradingAccount.objects.create(
        owner=owner, login=LOGIN, server="MetaSim-Demo", name="Imported", password_encrypted=encrypt("unused")
    )


@pytest.mark.parametrize("name,data", [("report.html", HTML), ("report.xlsx", XLSX)])
def test_both_report_formats_parse_to_the_same_deals(name, data):
    statement = parse_statement(name, data)
    assert statement.login == LOGIN
    assert [d.ticket for d in statement.deals] == [9001, 9002, 9003, 9004, 9005, 9006, 9007, 9008, 9009]
    deposit, credit, eur_in, eur_out = statement.deals[:4]
    assert (deposit.deal_type, deposit.profit) == (2, Decimal("10000"))  # "10 000.00" with a space
    assert (credit.deal_type, credit.profit) == (3, Decimal("500"))
    assert (eur_in.deal_type, eur_in.entry, eur_in.position_id) == (0, 0, 5001)
    # The closing deal is linked to its position through the Positions section (close time + price).
    assert (eur_out.deal_type, eur_out.entry, eur_out.position_id) == (1, 1, 5001)
    assert eur_out.commission == Decimal("-3.5") and eur_out.profit == Decimal("290")
    assert statement.deals[5].swap == Decimal("-4.1")
    assert statement.deals[0].time.isoformat() == "2026-09-30T08:00:00+00:00"


def test_import_stores_new_deals_and_skips_known_tickets_with_a_reason(report_account, owner):
    first = statement_import(account=report_account, user=owner, filename="mt5_report.html", data=HTML)
    assert (first.deals_found, first.deals_imported, first.deals_skipped) == (9, 9, 0)
    assert Deal.objects.filter(account=report_account).count() == 9
    again = statement_import(account=report_account, user=owner, filename="mt5_report.xlsx", data=XLSX)
    assert (again.deals_imported, again.deals_skipped) == (0, 9)
    assert again.skipped[0] == {"ticket": 9001, "reason": "already in this account"}
    assert Deal.objects.filter(account=report_account).count() == 9
    stored = Deal.objects.get(account=report_account, ticket=9006)
    assert (stored.symbol, stored.volume, stored.profit, stored.swap) == (
        "XAUUSD",
        Decimal("0.5"),
        Decimal("-260"),
        Decimal("-4.1"),
    )


def test_a_ticket_listed_twice_in_one_report_is_imported_once():
    data = html_report(deals=[DEALS[0], DEALS[0], DEALS[2]])
    statement = parse_statement("dup.html", data)
    assert [d.ticket for d in statement.deals] == [9001, 9001, 9003]


def test_duplicate_rows_are_skipped_as_listed_twice(report_account, owner):
    record = statement_import(
        account=report_account, user=owner, filename="dup.html", data=html_report(deals=[DEALS[0], DEALS[0]])
    )
    assert (record.deals_imported, record.deals_skipped) == (1, 1)
    assert record.skipped == [{"ticket": 9001, "reason": "listed twice in the report"}]


def test_a_malformed_row_rejects_the_whole_file_and_changes_nothing(report_account, owner):
    broken = [
        *DEALS[:3],
        [
            *DEALS[3][:1],
            "9004",
            "EURUSD",
            "sell",
            "out",
            "1",
            "1.0841",
            "5002",
            "-3.50",
            "0.00",
            "0.00",
            "two hundred",
            "10 283.00",
            "",
        ],
    ]
    with pytest.raises(StatementInvalid, match="Deals row 4: 'two hundred' is not a number"):
        statement_import(account=report_account, user=owner, filename="bad.html", data=html_report(deals=broken))
    assert not Deal.objects.filter(account=report_account).exists()
    assert not StatementImport.objects.exists()


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("empty.html", b"", "empty"),
        ("notes.txt", b"just some words", "HTML or XLSX"),
        ("fake.xlsx", b"PK\x03\x04 not really a zip", "not a readable XLSX"),
        ("page.html", b"<html><body><table><tr><td>hello</td></tr></table></body></html>", 'No "Deals" section'),
        ("bad-time.html", html_report(deals=[["yesterday", *DEALS[0][1:]]]), "is not a time"),
        ("bad-type.html", html_report(deals=[[*DEALS[0][:3], "teleport", *DEALS[0][4:]]]), "unknown deal type"),
    ],
)
def test_unreadable_reports_get_a_clear_error(name, data, message):
    with pytest.raises(StatementInvalid, match=message):
        parse_statement(name, data)


def test_a_report_of_another_account_is_refused(report_account, owner):
    with pytest.raises(StatementInvalid, match=f"for account 555, not {LOGIN}"):
        statement_import(account=report_account, user=owner, filename="other.html", data=html_report(login=555))
    assert not Deal.objects.exists()


def test_xlsx_written_by_openpyxl_round_trips(tmp_path):
    path = tmp_path / "r.xlsx"
    xlsx_report(path, deals=DEALS[:2])
    assert [d.ticket for d in parse_statement("r.xlsx", path.read_bytes()).deals] == [9001, 9002]


# --- web page --------------------------------------------------------------------------------


def test_import_page_shows_what_was_imported_and_skipped(client, owner, report_account):
    client.force_login(owner)
    url = reverse("web-account-import", args=[report_account.pk])
    assert client.get(url).status_code == 200
    statement_import(account=report_account, user=owner, filename="a.html", data=html_report(deals=DEALS[:2]))
    response = client.post(url, {"report": SimpleUploadedFile("mt5_report.xlsx", XLSX)})
    assert response.status_code == 200
    text = response.content.decode()
    assert "Imported 7 deals" in text and "already in this account" in text


def test_import_page_shows_a_malformed_file_as_a_form_error(client, owner, report_account):
    client.force_login(owner)
    response = client.post(
        reverse("web-account-import", args=[report_account.pk]),
        {"report": SimpleUploadedFile("x.xlsx", b"PK\x03\x04garbage")},
    )
    assert response.status_code == 400
    assert "not a readable XLSX" in response.content.decode()
    assert not Deal.objects.exists()


def test_import_page_is_a_404_for_an_outsider(client, outsider, report_account):
    client.force_login(outsider)
    url = reverse("web-account-import", args=[report_account.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"report": SimpleUploadedFile("r.html", HTML)}).status_code == 404
    assert not Deal.objects.exists()


# --- API -------------------------------------------------------------------------------------


def _api_url(account) -> str:
    return f"/api/accounts/{account.pk}/statements"


def test_api_imports_a_report(owner_client, report_account):
    response = owner_client.post(
        _api_url(report_account), {"report": SimpleUploadedFile("r.html", HTML)}, format="multipart"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["deals_imported"], body["deals_skipped"], body["file_format"]) == (9, 0, "html")


def test_api_answers_a_malformed_report_with_a_400_error_body(owner_client, report_account):
    response = owner_client.post(
        _api_url(report_account), {"report": SimpleUploadedFile("r.html", b"<p>hi</p>")}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "statement_invalid"


def test_api_without_a_file_is_a_400(owner_client, report_account):
    response = owner_client.post(_api_url(report_account), {}, format="multipart")
    assert response.status_code == 400
    assert "error" in response.json()


def test_api_is_a_404_for_an_outsider_and_401_without_auth(outsider_client, anon_client, report_account):
    upload = {"report": SimpleUploadedFile("r.html", HTML)}
    assert outsider_client.post(_api_url(report_account), upload, format="multipart").status_code == 404
    upload = {"report": SimpleUploadedFile("r.html", HTML)}
    assert anon_client.post(_api_url(report_account), upload, format="multipart").status_code in (401, 403)
    assert not Deal.objects.exists()
