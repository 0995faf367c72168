"""App configuration for people and MT5 accounts."""

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "People and MT5 accounts"

    def ready(self) -> None:
        from . import jwt  # noqa: F401  (connects the receiver that keeps only a hash of each refresh token)

        post_migrate.connect(_sync_roles_after_migrate, dispatch_uid="accounts.sync_roles")
        _actions_declare_permissions()


def _actions_declare_permissions() -> None:
    """Every admin action needs a permission: one that declares none (some libraries' do not) needs "change".

    Django offers an action to anyone who can see the changelist unless it names the permissions it needs;
    the project's own actions all name theirs (tests/test_permission_matrix.py checks it).
    """
    from django.contrib import admin

    for model in apps.get_models():
        if not admin.site.is_registered(model):
            continue
        model_admin = admin.site.get_model_admin(model)
        for action in model_admin.actions or ():
            func = getattr(type(model_admin), action, None) if isinstance(action, str) else action
            func = getattr(func, "__func__", func)
            if callable(func) and not getattr(func, "allowed_permissions", None):
                func.allowed_permissions = ("change",)
                func.permissions_defaulted = True


def _sync_roles_after_migrate(sender, app_config=None, using="default", **kwargs):
    # post_migrate fires once per app; permissions of every app exist once the last one fires.
    if app_config is not None and app_config is list(apps.get_app_configs())[-1]:
        from .roles import sync_roles

        sync_roles()
