"""An account's figures: the one list of them, and how MetaTrader 5 spells each.

`TradingAccount` and `AccountSnapshot` store them under these names and every answer (REST API, live
payloads, dashboards) uses the same names. MT5's ``AccountInfo`` (the Python package, the Manager API and the
simulated server alike) names them the same way except the floating P/L, which it calls ``profit``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

#: Field name (model column and API key) -> attribute of MT5's AccountInfo.
MT5_NAMES: dict[str, str] = {
    "balance": "balance",
    "credit": "credit",
    "equity": "equity",
    "margin": "margin",
    "margin_free": "margin_free",
    "margin_level": "margin_level",  # None when no margin is used
    "floating_profit": "profit",
}

#: The figures, in the order the screens show them.
FIGURES: tuple[str, ...] = tuple(MT5_NAMES)


def figures_from_mt5(info: Any) -> dict[str, Decimal | None]:
    """The figures of an MT5 ``AccountInfo`` (or anything with its attribute names), keyed by field name."""
    return {field: getattr(info, attribute) for field, attribute in MT5_NAMES.items()}


def figures_of(row: Any) -> dict[str, Decimal | None]:
    """The figures stored on a `TradingAccount` or an `AccountSnapshot`, keyed by field name."""
    return {field: getattr(row, field) for field in FIGURES}
