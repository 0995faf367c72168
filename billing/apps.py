"""App config of billing: connects the Stripe webhook handlers and the plan cache invalidation."""

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from django.core.cache import cache
        from django.db.models.signals import post_delete, post_migrate, post_save

        from .models import Plan
        from .selectors import CATALOG_KEY, plan_changed
        from .webhooks import connect_handlers

        def forget_catalog(**_kwargs) -> None:
            cache.delete(CATALOG_KEY)
            plan_changed.send(sender=None, user_id=None)

        post_save.connect(forget_catalog, sender=Plan, dispatch_uid="billing.forget_catalog.save")
        post_delete.connect(forget_catalog, sender=Plan, dispatch_uid="billing.forget_catalog.delete")
        connect_handlers()
        post_migrate.connect(seed_plans_if_missing, sender=self, dispatch_uid="billing.seed_plans")


def seed_plans_if_missing(using="default", **_kwargs) -> None:
    """The four plans exist after every migrate and every flush (the data migration runs only once)."""
    from importlib import import_module

    from django.apps import apps

    from .models import Plan

    if not Plan.objects.using(using).exists():
        import_module("billing.migrations.0002_seed_plans").seed(apps, None)
