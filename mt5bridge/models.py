"""Models of the mt5bridge app (the EA protocol's); the simulated MT5 server is its own app, ``mt5bridge.simulated``."""

from mt5bridge.ea.models import *  # noqa: F403
from mt5bridge.ea.models import __all__ as _ea_models

__all__ = list(_ea_models)
