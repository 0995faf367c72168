"""App configuration for Systeme.io, webhooks and the symbol pre-flight."""

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from accounts.models import SyncRun

        from . import signals

        post_save.connect(signals.sync_run_saved, sender=SyncRun, dispatch_uid="integrations.account_synced")
        signals.add_preflight_admin_action()
