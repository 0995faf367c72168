"""App configuration for people and MT5 accounts."""

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "People and MT5 accounts"

    def ready(self) -> None:
        from . import jwt  # noqa: F401  (connects the receiver that keeps only a hash of each refresh token)

        post_migrate.connect(_sync_roles_after_migrate, dispatch_uid="accounts.sync_roles")


def _sync_roles_after_migrate(sender, app_config=None, using="default", **kwargs):
    # post_migrate fires once per app; permissions of every app exist once the last one fires.
    if app_config is not None and app_config is list(apps.get_app_configs())[-1]:
        from .roles import sync_roles

        sync_roles()
