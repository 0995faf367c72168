from django.apps import AppConfig


class SimulatedMT5Config(AppConfig):
    """The simulated MT5 server: its tables, its market loop and the demo it seeds.

    Only ``mt5bridge.gateway.simulated`` imports this package from outside; everything else reaches
    the simulated server through the ``MT5Gateway`` interface.
    """

    name = "mt5bridge.simulated"
    label = "mt5sim"
    verbose_name = "Simulated MT5 server"
