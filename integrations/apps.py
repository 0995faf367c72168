"""App configuration for Systeme.io, webhooks and the symbol pre-flight."""

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        # Imported here, not at the top: these modules use models, which exist only once the app registry is ready.
        from django.db.models.signals import post_delete, post_save

        from accounts.models import SyncRun
        from bonuses import signals as bonus_signals
        from copytrading import signals as copy_signals

        from . import admin, receivers, selectors, tasks
        from .models import WebhookEndpoint
        from .services.webhooks import deliveries_ready

        post_save.connect(receivers.sync_run_saved, sender=SyncRun, dispatch_uid="integrations.account_synced")
        bonus_signals.bonus_granted.connect(receivers.bonus_granted, dispatch_uid="integrations.bonus_granted")
        bonus_signals.bonus_cancelled.connect(receivers.bonus_cancelled, dispatch_uid="integrations.bonus_cancelled")
        bonus_signals.bonus_converted.connect(receivers.bonus_converted, dispatch_uid="integrations.bonus_converted")
        bonus_signals.bonus_operation_failed.connect(
            receivers.bonus_operation_failed, dispatch_uid="integrations.bonus_operation_failed"
        )
        copy_signals.copy_command_failed.connect(
            receivers.copy_command_failed, dispatch_uid="integrations.copy_command_failed"
        )
        deliveries_ready.connect(tasks.deliveries_enqueue, dispatch_uid="integrations.deliveries_enqueue")
        for signal in (post_save, post_delete):
            signal.connect(
                selectors.webhook_endpoint_changed, sender=WebhookEndpoint, dispatch_uid="integrations.events"
            )
        admin.add_preflight_admin_action()
