from django.apps import AppConfig

from mt5bridge import events


class CopytradingConfig(AppConfig):
    name = "copytrading"
    verbose_name = "Copy trading"

    def ready(self) -> None:
        # Imported here: the listener's modules use the models, which exist only once the registry is ready.
        from .hooks import listener

        events.register(listener)
