"""The API's resources through the shared cases (tests.api_cases): who may read and change what, and what sticks."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal

import pytest

from accounts.models import TradingAccount
from accounts.services import trading_account_create
from bonuses.models import Campaign
from bonuses.services.campaigns import campaign_create
from copytrading.models import CopyLink, OrderTemplate, Rule
from copytrading.services import copy_link_create
from integrations.models import WebhookEndpoint
from integrations.services.webhooks import webhook_endpoint_create
from mt5bridge.simulated import create_account
from tests.api_cases import (
    APIViewCases,
    CreateObjectCases,
    GetObjectCases,
    ListObjectsCases,
    PaginatedListCases,
    UpdateObjectCases,
)
from tests.personas import SIM_PASSWORD, SIM_SERVER, api_client_for, next_login

pytestmark = pytest.mark.django_db

PUBLIC_HOOK = "https://93.184.215.14/hooks/mt5"  # an address literal: vetted as public without a DNS lookup
_names = itertools.count(1)


def sim_login() -> int:
    login = next_login()
    create_account(login=login, password=SIM_PASSWORD, server=SIM_SERVER, balance=Decimal("5000"), name="Resource")
    return login


def account_of(owner, name: str = "") -> TradingAccount:
    """An account of ``owner`` on the simulated server, connected through the service like a trader does."""
    return trading_account_create(
        owner=owner, login=sim_login(), password=SIM_PASSWORD, server=SIM_SERVER, name=name, sync_now=False
    )


class TestCopyLinks(APIViewCases):
    readers = ("super_admin", "support_agent")  # support reads copy objects (accounts/roles.py: copy.view)
    list_url = "/api/copy/links"
    model = CopyLink
    paginated = False
    fields = frozenset(
        {"id", "master", "slave", "master_name", "slave_name", "active", "priority", "sizing_mode", "multiplier"}
        | {"fixed_volume", "risk_percent", "no_sl", "default_sl_points", "contract_size_aware", "min_volume"}
        | {"max_volume", "symbol_overrides", "symbols_include", "symbols_exclude", "magics_include"}
        | {"magics_exclude", "reverse", "copy_sltp", "copy_pending", "close_only", "max_delay_seconds"}
        | {"max_slippage_points", "refusal_code", "refusal_reason", "refused_at", "created_at", "updated_at"}
        | {"skip_below_min_volume", "equity_stop", "equity_stop_level", "equity_stop_percent", "equity_stop_close"}
        | {"start_equity", "stopped_at", "stop_reason"}
    )
    required = ("master", "slave")
    wrong_types = {"master": "not-a-uuid", "multiplier": "lots", "reverse": "maybe", "symbols_include": "BTCUSD"}
    wrong_update_types = {"multiplier": "lots", "priority": "first", "magics_include": [-1]}

    def make(self, owner):
        return copy_link_create(user=owner, master_id=account_of(owner).pk, slave_id=account_of(owner).pk)

    def create_data(self, owner):
        return {
            "master": str(account_of(owner, "Master").pk),
            "slave": str(account_of(owner, "Slave").pk),
            "sizing_mode": "balance_ratio",
            "multiplier": "2.5",
            "reverse": True,
            "symbols_include": ["BTCUSD", "EURUSD"],
            "magics_exclude": [7],
        }

    def update_data(self, obj):
        return {"active": False, "priority": 3, "multiplier": "1.5", "symbol_overrides": {"BTCUSD": "BTCUSD.pro"}}

    def test_a_trader_cannot_link_another_traders_accounts(self, owner, outsider):
        response = api_client_for(outsider).post(self.list_url, self.create_data(owner), format="json")
        assert response.status_code == 404 and not CopyLink.objects.exists()


class TestCopyRules(APIViewCases):
    readers = ("super_admin", "support_agent")  # support reads copy objects (accounts/roles.py: copy.view)
    list_url = "/api/copy/rules"
    model = Rule
    paginated = False
    fields = frozenset(
        {"id", "account", "kind", "action", "active", "threshold", "threshold_is_percent", "max_open_trades"}
        | {"symbols_allow", "symbols_deny", "hours_start", "hours_end", "timezone", "triggered", "created_at"}
    )
    required = ("account", "kind")
    wrong_types = {"account": "not-a-uuid", "threshold": "lots", "active": "maybe", "symbols_deny": "XAUUSD"}
    wrong_update_types = {"threshold": "lots", "max_open_trades": "many", "symbols_allow": "BTCUSD"}

    def make(self, owner):
        return Rule.objects.create(account=account_of(owner), kind="equity_stop", threshold=Decimal("100"))

    def create_data(self, owner):
        return {
            "account": str(account_of(owner).pk),
            "kind": "daily_loss",
            "action": "close_only",
            "threshold": "250.00",
            "threshold_is_percent": False,
            "symbols_deny": ["XAUUSD"],
        }

    def update_data(self, obj):
        return {"threshold": "50", "active": False, "action": "close_all_and_pause"}

    def test_a_trader_cannot_add_a_rule_to_another_traders_account(self, owner, outsider):
        response = api_client_for(outsider).post(self.list_url, self.create_data(owner), format="json")
        assert response.status_code == 404 and not Rule.objects.exists()


class TestCopyTemplates(APIViewCases):
    readers = ("super_admin", "support_agent")  # support reads copy objects (accounts/roles.py: copy.view)
    list_url = "/api/copy/templates"
    model = OrderTemplate
    paginated = False
    fields = frozenset(
        {"id", "name", "symbol", "side", "volume", "risk_percent", "sl_points", "tp_points", "comment", "created_at"}
    )
    required = ("name", "symbol", "side")
    wrong_types = {"volume": "lots", "sl_points": "far", "side": ["buy"], "name": {"text": "x"}}

    def make(self, owner):
        name = f"Template {next(_names)}"
        return OrderTemplate.objects.create(owner=owner, name=name, symbol="BTCUSD", side="buy", volume=Decimal("0.1"))

    def create_data(self, owner):
        name = f"BTC scalp {next(_names)}"
        return {"name": name, "symbol": "BTCUSD", "side": "sell", "volume": "0.25", "sl_points": 500, "comment": "t"}

    def update_data(self, obj):
        return {"volume": "0.2", "tp_points": 900, "comment": "changed"}


class TestWebhookEndpoints(APIViewCases, PaginatedListCases):
    list_url = "/api/webhooks/endpoints"
    model = WebhookEndpoint
    owned = False
    fields = frozenset(
        {"id", "url", "description", "events", "is_active", "consecutive_failures", "disabled_at"}
        | {"disabled_reason", "created_at"}
    )
    write_only = frozenset({"secret"})
    required = ("url", "events")
    wrong_types = {"url": 12345, "events": "bonus.granted", "description": ["CRM"]}
    wrong_update_types = {"events": "rule.hit", "is_active": "maybe", "url": "not a url"}

    def make(self, owner):
        return webhook_endpoint_create(url=PUBLIC_HOOK, events=["*"], created_by=owner)[0]

    def create_data(self, owner):
        return {"url": PUBLIC_HOOK, "events": ["bonus.granted", "rule.hit"], "description": "CRM", "secret": "k-1"}

    def update_data(self, obj):
        return {"description": "CRM (new)", "is_active": False, "events": ["*"]}

    def created(self, body):
        assert body["secret"] == "k-1"  # shown once, at creation
        return body["endpoint"]


class TestCampaigns(GetObjectCases, ListObjectsCases, PaginatedListCases, CreateObjectCases, UpdateObjectCases):
    """Staff only; no DELETE (campaigns are archived through their status)."""

    list_url = "/api/campaigns"
    model = Campaign
    owned = False
    readers = ("super_admin", "campaign_manager", "read_only")
    writers = ("super_admin", "campaign_manager")
    update_method = "put"
    fields = frozenset(
        {"id", "name", "description", "bonus_type", "status", "bonus_percent", "max_bonus_amount", "fixed_amount"}
        | {"min_deposit", "max_deposit", "starts_at", "ends_at", "expiry_days", "target_groups", "target_countries"}
        | {"agent_codes", "promo_codes", "triggers", "one_per_account", "max_concurrent", "lots_per_unit"}
        | {"unit_amount", "counting_symbols", "min_lot", "only_after_bonus", "created_at", "updated_at"}
        | {"budget_total", "client_credit_cap"}
    )
    list_fields = fields | {"bonuses_active"}  # counted for lists only
    required = ("name", "bonus_percent")
    wrong_types = {"bonus_percent": "lots", "target_countries": "DE", "expiry_days": "soon", "one_per_account": 3}

    def make(self, owner):
        return campaign_create(actor=owner, name=f"Campaign {next(_names)}", bonus_type="B", bonus_percent=Decimal(50))

    def create_data(self, owner):
        return {
            "name": "Spring",
            "bonus_type": "C",
            "bonus_percent": "30",
            "unit_amount": "12.50",
            "triggers": ["auto_deposit"],
            "target_countries": ["DE", "AT"],
            "max_concurrent": 2,
        }

    def update_data(self, obj):
        return {"name": "Summer", "bonus_type": obj.bonus_type, "bonus_percent": "45.5", "promo_codes": ["SUN"]}


class TestTradingAccounts(APIViewCases, PaginatedListCases):
    list_url = "/api/accounts"
    model = TradingAccount
    readers = ("super_admin", "support_agent")
    missing_pk = uuid.UUID("00000000-0000-4000-8000-000000000000")
    fields = frozenset(
        {"id", "owner", "login", "server", "broker", "category", "name", "currency", "leverage", "is_hedging"}
        | {"is_active", "gateway_kind", "sync_status", "sync_status_display", "last_sync_at", "consecutive_errors"}
        | {"last_error", "balance", "equity", "margin", "margin_free", "margin_level", "credit", "floating_profit"}
        | {"created_at", "data_age", "access", "ownership_proof"}
    )
    write_only = frozenset({"password"})
    required = ("login", "password", "server")
    wrong_types = {"login": "abc", "category": 5, "name": ["Main"]}
    wrong_update_types = {"category": "vip", "is_active": "maybe", "name": ["Main"]}

    def make(self, owner):
        return account_of(owner, "Main")

    def create_data(self, owner):
        return {"login": sim_login(), "password": SIM_PASSWORD, "server": SIM_SERVER, "category": "funded", "name": "P"}

    def update_data(self, obj):
        return {"name": "Renamed", "category": "challenge", "is_active": False}
