"""mt5bridge.gateway.types is the one spelling of MT5's enums.

accounts sits below mt5bridge and may not import it, so it keeps the few values it needs as plain
numbers; these tests hold those numbers to the gateway's enums (and both to the documented API).
"""

from __future__ import annotations

import pytest

from accounts import web
from accounts.analytics import tables
from accounts.statements import parsing
from integrations import selectors
from mt5bridge.gateway.types import (
    DealEntry,
    DealType,
    MarginMode,
    OrderFilling,
    OrderState,
    OrderTime,
    OrderType,
    PositionType,
)
from mt5bridge.simulated import accounting
from mt5bridge.simulated.models import SimAccount, SimOrder


def test_documented_values_of_the_enums_added_for_requests_and_orders():
    assert [int(m) for m in OrderFilling] == [0, 1, 2, 3]
    assert [int(m) for m in OrderTime] == [0, 1, 2, 3]
    assert (OrderState.PLACED, OrderState.CANCELED, OrderState.FILLED, OrderState.EXPIRED) == (1, 2, 4, 6)


def test_the_accounts_analytics_numbers_are_the_gateway_deal_types():
    assert (tables.BUY, tables.SELL, tables.BALANCE, tables.CREDIT, tables.BONUS) == (
        DealType.BUY,
        DealType.SELL,
        DealType.BALANCE,
        DealType.CREDIT,
        DealType.BONUS,
    )
    assert set(tables.COMMISSION_TYPES) == {t for t in DealType if t.name.startswith("COMMISSION")}
    assert set(tables.CANCELED_TYPES) == {DealType.BUY_CANCELED, DealType.SELL_CANCELED}
    assert (tables.ENTRY_IN, tables.ENTRY_OUT, tables.ENTRY_INOUT, tables.ENTRY_OUT_BY) == tuple(DealEntry)


@pytest.mark.parametrize(("words", "deal_type"), [(w, t) for w, t in parsing.DEAL_TYPES.items()])
def test_statement_words_name_the_gateway_deal_types(words, deal_type):
    name = DealType(deal_type).name.replace("_", " ").lower()
    aliases = {"franked dividend": "dividend franked", "daily commission": "commission daily",
               "monthly commission": "commission monthly", "daily agent commission": "commission agent daily",
               "monthly agent commission": "commission agent monthly"}  # fmt: skip
    assert aliases.get(words, words) == name


def test_web_labels_cover_the_gateway_order_and_deal_types():
    assert {OrderType(t).name.replace("_", " ").lower() for t in web.ORDER_TYPES} == {
        label.lower() for label in web.ORDER_TYPES.values()
    }
    assert all(DealType(t) is not None for t in web.DEAL_TYPES)


def test_the_simulator_and_integrations_take_their_numbers_from_the_gateway():
    assert (accounting.BUY, accounting.SELL) == (PositionType.BUY, PositionType.SELL)
    assert (SimAccount.NETTING, SimAccount.HEDGING) == (MarginMode.RETAIL_NETTING, MarginMode.RETAIL_HEDGING)
    assert (SimOrder.PLACED, SimOrder.REJECTED) == (OrderState.PLACED, OrderState.REJECTED)
    assert set(selectors.CREDIT_TYPES) == {DealType.CREDIT, DealType.BONUS}
