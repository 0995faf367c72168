"""Models of the mt5bridge app: the simulated MT5 server's tables live in ``mt5bridge.simulated``."""

from mt5bridge.simulated.models import *  # noqa: F403
from mt5bridge.simulated.models import __all__ as _simulated_models

__all__ = list(_simulated_models)

from mt5bridge.ea.models import *  # noqa: E402, F403
from mt5bridge.ea.models import __all__ as _ea_models  # noqa: E402

__all__ += list(_ea_models)
