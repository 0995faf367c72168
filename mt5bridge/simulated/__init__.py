"""An MT5 server simulated in the database: servers, symbols, prices, accounts, trading and history.

The seeding helpers are importable from here (``from mt5bridge.simulated import create_account``);
they load lazily so importing the package does not need the app registry.
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "create_account": "seeding",
    "generate_history": "seeding",
    "deposit": "seeding",
    "withdraw": "seeding",
    "change_password": "seeding",
    "ensure_server": "seeding",
    "ensure_servers": "seeding",
    "process_market": "engine",
    "OperationRefused": "trade_rules",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
