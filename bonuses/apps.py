from django.apps import AppConfig


class BonusesConfig(AppConfig):
    name = "bonuses"
    verbose_name = "Bonuses"

    def ready(self) -> None:
        from . import receivers, signals  # noqa: PLC0415 (the app registry must be ready)

        signals.bonus_granted.connect(receivers.on_granted, dispatch_uid="bonuses.email_granted")
        signals.bonus_converted.connect(receivers.on_converted, dispatch_uid="bonuses.email_converted")
        signals.bonus_cancelled.connect(receivers.on_cancelled, dispatch_uid="bonuses.email_cancelled")
