"""App configuration for Systeme.io, webhooks and the symbol pre-flight."""

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from accounts.models import SyncRun

        from . import selectors, signals
        from .models import WebhookEndpoint

        post_save.connect(signals.sync_run_saved, sender=SyncRun, dispatch_uid="integrations.account_synced")
        for signal in (post_save, post_delete):
            signal.connect(selectors.forget_webhook_events, sender=WebhookEndpoint, dispatch_uid="integrations.events")
        signals.add_preflight_admin_action()
