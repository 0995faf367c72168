"""App configuration for people and MT5 accounts."""

from functools import wraps

from django.apps import AppConfig, apps
from django.core.exceptions import PermissionDenied
from django.db.models.signals import post_migrate, pre_save
from django.utils.module_loading import autodiscover_modules

from .roles import sync_roles

PROJECT_APPS = ("accounts", "entitlements", "mt5bridge", "copytrading", "bonuses", "billing", "integrations")


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "People and MT5 accounts"

    def ready(self) -> None:
        from . import jwt  # noqa: F401, PLC0415  (connects the receiver that keeps only a hash of each refresh token)

        post_migrate.connect(_sync_roles_after_migrate, dispatch_uid="accounts.sync_roles")
        # Each app's part of a person's data export and account deletion lives in its `personal_data` module,
        # which registers itself through accounts.ports (found the way the admin finds `admin` modules).
        autodiscover_modules("personal_data")
        # A copy link is started only by a person whose email is confirmed (accounts.verification).
        from .verification import refuse_unconfirmed_copy_link  # noqa: PLC0415 (uses models: registry ready)

        pre_save.connect(
            refuse_unconfirmed_copy_link, sender="copytrading.CopyLink", dispatch_uid="accounts.unconfirmed_copy_link"
        )
        _harden_library_admins()


def _harden_library_admins() -> None:
    """The admin pages of libraries (dj-stripe, django-celery-beat, axes, django-otp) follow the matrix too.

    - An admin action that declares no permission needs "change": Django offers an action to anyone who
      can see the changelist unless it names the permissions it needs. The project's own actions all
      name theirs (tests/test_permission_matrix.py checks it).
    - A library's extra admin page (dj-stripe's "custom action" confirmation runs Stripe calls and checks
      no permission of its own) needs the change permission of its model.
    """
    from django.contrib import admin  # noqa: PLC0415  (loads models as it imports: only once the registry is ready)

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
        if model._meta.app_label not in PROJECT_APPS:
            model_admin.get_urls = _guarded_extra_urls(model_admin, model_admin.get_urls)


STANDARD_ADMIN_VIEWS = ("changelist", "add", "history", "delete", "change")


def _guarded_extra_urls(model_admin, get_urls):
    def guard(view):
        @wraps(view)
        def guarded(request, *args, **kwargs):
            if not model_admin.has_change_permission(request):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return guarded

    def urls():
        patterns = get_urls()
        for pattern in patterns:
            name = getattr(pattern, "name", None) or ""
            if hasattr(pattern, "callback") and not name.endswith(tuple(f"_{v}" for v in STANDARD_ADMIN_VIEWS)):
                pattern.callback = guard(pattern.callback)
        return patterns

    return urls


def _sync_roles_after_migrate(sender, app_config=None, using="default", **kwargs):
    # post_migrate fires once per app; permissions of every app exist once the last one fires.
    if app_config is not None and app_config is list(apps.get_app_configs())[-1]:
        sync_roles()
