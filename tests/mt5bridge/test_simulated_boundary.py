"""The simulated MT5 server sits behind its gateway: nothing else in the project imports it."""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
APPS = ("config", "accounts", "entitlements", "mt5bridge", "copytrading", "bonuses", "billing", "integrations")


def test_only_the_simulated_gateway_imports_the_simulated_server():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*(app for app in APPS if (ROOT / app).is_dir()), cache_dir=None)
    importers = {
        imp["importer"]
        for imp in graph.find_matching_direct_imports(import_expression="** -> mt5bridge.simulated.**")
        if not imp["importer"].startswith("mt5bridge.simulated.")
    }
    importers |= {
        imp["importer"]
        for imp in graph.find_matching_direct_imports(import_expression="** -> mt5bridge.simulated")
        if not imp["importer"].startswith("mt5bridge.simulated")
    }
    assert importers == {"mt5bridge.gateway.simulated"}
