"""App config of entitlements: the plan catalogue's cache follows admin edits; the four plans always exist."""

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db.models.signals import post_delete, post_migrate, post_save

from .catalog import seed_plans


class EntitlementsConfig(AppConfig):
    name = "entitlements"
    verbose_name = "Plans and entitlements"

    def ready(self) -> None:
        # Imported here: models and selectors need the app registry, which is ready only now.
        from .models import Plan
        from .selectors import forget_catalog

        def catalog_edited(**_kwargs) -> None:
            forget_catalog()

        post_save.connect(catalog_edited, sender=Plan, dispatch_uid="entitlements.forget_catalog.save", weak=False)
        post_delete.connect(catalog_edited, sender=Plan, dispatch_uid="entitlements.forget_catalog.delete", weak=False)
        post_migrate.connect(seed_plans_if_missing, sender=self, dispatch_uid="entitlements.seed_plans")

        # accounts refuses an account beyond the owner's plan through its port (it sits below this app).
        from accounts.ports import provide_account_limit, provide_history

        from .gates import analytics_for, history_start, require_limit

        provide_account_limit(lambda owner, *, active: require_limit(owner, "accounts", active))
        # ... and bounds its reads of deal history and the statistics it shows by the owner's plan.
        provide_history(history_start, analytics_for)


def seed_plans_if_missing(using="default", apps=None, **_kwargs) -> None:
    """The four plans exist after every migrate and every flush (a data migration runs only once).

    migrate passes its migration state as ``apps``; flush passes none, and the current models are right then."""
    try:
        plans = (apps or global_apps).get_model("entitlements", "Plan").objects.db_manager(using)
    except (AttributeError, LookupError):  # no migration state given, or migrated back to before the plans
        return
    if not plans.exists():
        seed_plans(plans)
