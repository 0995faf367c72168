"""The lower layers import nothing above them (docs/architecture.md): config no app, accounts only config.

import-linter enforces the whole contract in CI (pyproject.toml); these tests name the lower layers' rule
on its own so a wrong-way import fails where it is written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("config", "accounts", "entitlements", "mt5bridge", "copytrading", "bonuses", "billing", "integrations")


@pytest.fixture(scope="module")
def graph():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return grimp.build_graph(*(app for app in APPS if (ROOT / app).is_dir()), cache_dir=None)


def _imports_above(graph, layer: str, allowed: set[str]) -> list[tuple[str, str]]:
    found = []
    for app in APPS:
        if app == layer or app in allowed or app not in graph.modules:
            continue
        for imp in graph.find_matching_direct_imports(import_expression=f"{layer}.** -> {app}.**"):
            found.append((imp["importer"], imp["imported"]))
    return found


def test_config_imports_no_app(graph):
    assert _imports_above(graph, "config", set()) == []


def test_accounts_imports_only_config(graph):
    assert _imports_above(graph, "accounts", {"config"}) == []
