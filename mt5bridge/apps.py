from django.apps import AppConfig


class Mt5BridgeConfig(AppConfig):
    name = "mt5bridge"
    verbose_name = "MT5 bridge"
