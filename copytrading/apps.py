from django.apps import AppConfig

from mt5bridge import events


class CopytradingConfig(AppConfig):
    name = "copytrading"
    verbose_name = "Copy trading"

    def ready(self) -> None:
        # Imported here: the listener's modules use the models, which exist only once the registry is ready.
        from .hooks import listener

        events.register(listener)

        # A plan change or an account switched on or off drops the copy engine's cached gate answers.
        from .access import connect_receivers

        connect_receivers()

        # Signals: a link a stopped subscription left stays off until its follower follows again.
        from .signal_services import connect_receivers as connect_signal_receivers

        connect_signal_receivers()

        # The plan's usage page counts copy links through entitlements' port (entitlements sits below this app).
        from entitlements.selectors import usage_counted

        from .models import CopyLink

        def copy_links_used(user, **_kwargs) -> dict:
            # The same count the copy-link limit is checked against (copytrading.services).
            return {"copy_links": CopyLink.objects.filter(created_by=user).count()}

        usage_counted.connect(copy_links_used, weak=False, dispatch_uid="copytrading.usage.copy_links")

        # The support agent's account 360 page (bonuses admin) shows copy links through accounts' port.
        from accounts.ports import provide_support_panel

        from .support import copy_panel

        provide_support_panel("copy", copy_panel)
