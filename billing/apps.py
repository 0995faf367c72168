"""App config of billing (Stripe through dj-stripe): connects the Stripe webhook handlers."""

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # Imported here: the handlers use dj-stripe's models, which exist only once the registry is ready.
        from .webhooks import connect_handlers

        connect_handlers()

        # Signal followers' fees, announced by copy trading's port (docs/signals.md).
        from .signal_fees import connect_receivers

        connect_receivers()
