"""Names that come from MT5 or from traders (groups, countries, account names, symbols, EA comments, display
names) reach the admin and the web pages as text, never as markup; and every page carries the
Content-Security-Policy that would stop a script that got through anyway."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from accounts.models import Deal, Order, Position, TradingAccount
from tests.personas import UserFactory, next_login

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent

# What a trader, or a broker's MT5 set-up a trader can influence, might put in a name.
GROUP = "<script>alert(1)</script>"
COUNTRY = '"><img src=x onerror=alert(1)>'
ACCOUNT_NAME = '<img src=x onerror=alert("name")>'
MT5_NAME = "<iframe src=javascript:alert(5)>"
SYMBOL = "<svg onload=alert(2)>"
COMMENT = "<b onmouseover=alert(3)>EA</b>"
SHORT_COMMENT = "<svg/onload=alert()>"  # order templates keep 20 characters
DISPLAY_NAME = '<script>alert("me")</script>'
ERROR = "</span><script>alert(4)</script>"


def assert_escaped(html: str, *hostile: str) -> None:
    for value in hostile:
        assert value not in html, f"{value!r} is in the page as markup"
        assert escape(value) in html, f"{value!r} is not on the page at all (nothing was checked)"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user, backend="accounts.backends.ModelBackend")
    return client


def get(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


# --- Admin: the campaign form (Scan MT5) and the bonus pages -----------------------------------------------------


@pytest.fixture
def hostile_mt5_account(db) -> int:
    """An MT5 account whose group, country and name are markup, on the simulated server the back office scans."""
    from mt5bridge.simulated import create_account

    login = next_login() + 300000
    create_account(
        login=login, password="Sim-pass-123", group=GROUP, country=COUNTRY, name=MT5_NAME, balance=Decimal("500")
    )
    return login


def test_scan_mt5_group_and_country_names_are_escaped_on_the_campaign_form(super_admin, hostile_mt5_account):
    """Guards the stored XSS: the form's help text listed the scanned names raw, and the admin renders help
    text as HTML."""
    client = logged_in(super_admin)
    response = client.post("/admin/bonuses/campaign/scan/")
    assert response.status_code == 302
    from bonuses.models import Mt5Scan

    scan = Mt5Scan.objects.first()
    assert GROUP in scan.groups and COUNTRY in scan.countries  # the names arrived as MT5 has them

    assert_escaped(get(client, "/admin/bonuses/campaign/add/"), GROUP, COUNTRY)


def test_bonus_admin_pages_escape_mt5_names(super_admin, hostile_mt5_account):
    from bonuses.models import MonitoredAccount
    from bonuses.services.monitored import monitoring_register, mt5_scan

    client = logged_in(super_admin)
    mt5_scan(actor="test")
    monitoring_register(actor="test", login=hostile_mt5_account)

    assert_escaped(get(client, f"/admin/bonuses/bonus/lookup/?login={hostile_mt5_account}"), GROUP, COUNTRY, MT5_NAME)
    # The monitored accounts list shows the group in a column and in its filter.
    assert_escaped(get(client, "/admin/bonuses/monitoredaccount/"), GROUP, COUNTRY)
    monitored = MonitoredAccount.objects.get(login=hostile_mt5_account)
    assert_escaped(get(client, f"/admin/bonuses/monitoredaccount/{monitored.pk}/change/"), GROUP, COUNTRY)


# --- Web app: account pages ---------------------------------------------------------------------------------------


@pytest.fixture
def hostile_account(db):
    """A trader whose display name, account name, symbols and EA comments are markup, with history to chart."""
    owner = UserFactory(display_name=DISPLAY_NAME)
    account = TradingAccount.objects.create(
        owner=owner,
        login=next_login(),
        server="MetaSim-Demo",
        name=ACCOUNT_NAME,
        password_encrypted=b"-",
        balance=Decimal("10000"),
        equity=Decimal("10050"),
        margin_free=Decimal("9000"),
        last_error=ERROR,
        sync_status="error",
    )
    now = timezone.now()
    Position.objects.create(
        account=account, ticket=1, symbol=SYMBOL, side=0, volume=Decimal("1"), price_open=Decimal("1.1"),
        price_current=Decimal("1.2"), profit=Decimal("50"), comment=COMMENT, opened_at=now, updated_at=now,
    )  # fmt: skip
    Order.objects.create(
        account=account, ticket=2, symbol=SYMBOL, order_type=2, volume_initial=Decimal("1"),
        volume_current=Decimal("1"), price_open=Decimal("1.0"), comment=COMMENT, placed_at=now,
    )  # fmt: skip
    Deal.objects.create(account=account, ticket=10, time=now - timedelta(days=30), deal_type=2, profit=Decimal("10000"))
    for i in range(6):
        opened = now - timedelta(days=20 - i)
        common = {
            "account": account,
            "symbol": SYMBOL,
            "comment": COMMENT,
            "volume": Decimal("1"),
            "position_id": 100 + i,
        }
        Deal.objects.create(ticket=100 + 2 * i, time=opened, deal_type=0, entry=0, price=Decimal("1.1"), **common)
        Deal.objects.create(ticket=101 + 2 * i, time=opened + timedelta(hours=2), deal_type=1, entry=1,
                            price=Decimal("1.2"), profit=Decimal("25") * (1 if i % 2 else -1), **common)  # fmt: skip
    return account


def test_account_pages_escape_trader_and_mt5_names(hostile_account):
    client = logged_in(hostile_account.owner)
    pk = hostile_account.pk

    dashboard = get(client, "/dashboard/")
    assert_escaped(dashboard, ACCOUNT_NAME, DISPLAY_NAME)
    assert_escaped(get(client, "/accounts/"), ACCOUNT_NAME, ERROR)
    detail = get(client, f"/accounts/{pk}/")
    assert_escaped(detail, ACCOUNT_NAME, SYMBOL, ERROR)
    assert_escaped(get(client, f"/accounts/{pk}/deals/"), SYMBOL)
    analytics = get(client, f"/accounts/{pk}/analytics/")
    assert_escaped(analytics, ACCOUNT_NAME)
    # The by-symbol table shows the symbol; the chart data carries it inside json_script, which escapes "<".
    assert SYMBOL not in analytics and escape(SYMBOL) in analytics
    assert "\\u003Csvg onload=alert(2)\\u003E" in analytics


def test_admin_lists_escape_trader_names(super_admin, hostile_account):
    client = logged_in(super_admin)
    assert_escaped(get(client, "/admin/accounts/tradingaccount/"), ACCOUNT_NAME)
    assert_escaped(get(client, f"/admin/accounts/tradingaccount/{hostile_account.pk}/change/"), ACCOUNT_NAME)


# --- Web app: copy-trading pages ------------------------------------------------------------------------------------


def test_copy_pages_escape_account_names_symbols_and_ea_messages(hostile_account):
    from copytrading.models import CopiedPosition, CopyEvent, CopyLink, OrderTemplate, Rule, RuleHit
    from mt5bridge.ea.models import Command

    owner = hostile_account.owner
    slave = TradingAccount.objects.create(
        owner=owner, login=next_login(), server="MetaSim-Demo", name=f"slave {ACCOUNT_NAME}", password_encrypted=b"-"
    )
    link = CopyLink.objects.create(master=hostile_account, slave=slave)
    CopiedPosition.objects.create(
        link=link, slave_account=slave, master_ticket=1, master_symbol=SYMBOL, master_volume=Decimal("1"),
        slave_symbol=SYMBOL, slave_side="buy", slave_volume=Decimal("1"), copy_id="c1",
    )  # fmt: skip
    CopyEvent.objects.create(
        link=link, master_account=hostile_account, slave_account=slave, intent="open", reason_code="symbol",
        reason=f"no {SYMBOL} on the slave", symbol=SYMBOL,
    )  # fmt: skip
    rule = Rule.objects.create(account=slave, kind="symbol_filter", symbols_allow=[SYMBOL])
    RuleHit.objects.create(rule=rule, account=slave, kind="symbol_filter", action="pause", detail=f"{SYMBOL} traded")
    OrderTemplate.objects.create(owner=owner, name=f"t {ACCOUNT_NAME}", symbol=SYMBOL, side="buy",
                                 volume=Decimal("0.1"), comment=SHORT_COMMENT)  # fmt: skip
    Command.objects.create(account=slave, kind="open_market", origin="web_terminal", status="failed",
                           params={"symbol": SYMBOL, "side": "buy", "volume": "1"}, message=COMMENT)  # fmt: skip

    client = logged_in(owner)
    assert_escaped(get(client, "/copy/"), ACCOUNT_NAME)
    assert_escaped(get(client, "/copy/history/"), SYMBOL)
    assert_escaped(get(client, "/copy/rules/"), SYMBOL, ACCOUNT_NAME)
    assert_escaped(get(client, "/copy/templates/"), SYMBOL, SHORT_COMMENT, ACCOUNT_NAME)
    assert_escaped(get(client, "/copy/terminal/commands/"), SYMBOL, COMMENT)


# --- Content-Security-Policy ------------------------------------------------------------------------------------------


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: rest for name, *rest in (part.split() for part in header.split(";") if part.strip())}


def test_pages_carry_the_content_security_policy(hostile_account, super_admin):
    """Script and style only from the site (or with the request's nonce), no plugins, no framing, forms post here."""
    for client, url in [(logged_in(hostile_account.owner), f"/accounts/{hostile_account.pk}/"),
                        (logged_in(super_admin), "/admin/bonuses/campaign/add/"), (Client(), "/login/")]:  # fmt: skip
        policy = _policy(client.get(url))
        assert policy["default-src"] == ["'self'"]
        assert [s for s in policy["script-src"] if not s.startswith("'nonce-")] == ["'self'"]
        assert [s for s in policy["style-src"] if not s.startswith("'nonce-")] == ["'self'"]
        assert policy["img-src"] == ["'self'", "data:"]
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
        assert policy["base-uri"] == ["'self'"] and policy["form-action"][0] == "'self'"
        # The live pages' WebSocket is this host's.
        assert {"'self'", "ws://testserver", "wss://testserver"} <= set(policy["connect-src"])
        assert "'unsafe-inline'" not in str(policy) and "'unsafe-eval'" not in str(policy)


def test_api_docs_load_swagger_ui_from_this_site_with_the_nonce_for_its_style():
    response = Client().get("/api/docs/")
    html = response.content.decode()
    assert "cdn" not in html.lower() and "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    nonce = re.search(r"<style nonce=\"([^\"]+)\"", html).group(1)
    assert f"'nonce-{nonce}'" in _policy(response)["style-src"]
    assert "<script>" not in html  # the start-up script is a file of its own (?script)
    script = Client().get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*\bnonce=)(?![^>]*type=\"application/json\")[^>]*>"), "inline <script>"),
    (re.compile(r"<style(?![^>]*\bnonce=)[^>]*>"), "inline <style>"),
    (re.compile(r"\sstyle=\""), "style attribute"),
    (re.compile(r"\son[a-z]+=\""), "event handler attribute"),
    (re.compile(r"\|\s*safe\b|{%\s*autoescape\s+off"), "autoescape off"),
]


def test_templates_have_no_inline_script_style_or_unescaped_output():
    """The policy blocks inline scripts, styles and handlers: a template that adds one breaks under it."""
    found = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        found += [f"{path.relative_to(ROOT)}: {what}" for pattern, what in INLINE if pattern.search(text)]
    assert found == []
