"""WebSocket routes of every app, gathered in one list (each app may have a routing.py)."""

from importlib import import_module

WEBSOCKET_APPS = ["accounts", "mt5bridge", "copytrading", "bonuses", "integrations"]


def _collect() -> list:
    patterns: list = []
    for app in WEBSOCKET_APPS:
        try:
            module = import_module(f"{app}.routing")
        except ModuleNotFoundError as exc:
            if exc.name != f"{app}.routing":
                raise
            continue
        patterns.extend(module.websocket_urlpatterns)
    return patterns


websocket_urlpatterns = _collect()
