"""The roles (groups) and the model permissions each one holds, declared once."""

from __future__ import annotations

from fnmatch import fnmatch

from .choices import Role

# Patterns over "app_label.codename". Later apps' permissions join by pattern, so a new
# model's permissions reach the right roles on the next migrate without another migration.
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    Role.SUPER_ADMIN: ("*",),
    Role.CAMPAIGN_MANAGER: (
        "bonuses.*",
        "accounts.view_*",
        "mt5bridge.view_*",
    ),
    Role.SUPPORT_AGENT: (
        "accounts.view_*",
        "accounts.sync_tradingaccount",
        "bonuses.view_*",
        "bonuses.add_bonus",
        "bonuses.assign_bonus",
        "copytrading.view_*",
    ),
    Role.READ_ONLY: ("*.view_*",),
    Role.TRADER: ("accounts.add_tradingaccount",),
}
STAFF_ROLE_NAMES = (Role.SUPER_ADMIN, Role.CAMPAIGN_MANAGER, Role.SUPPORT_AGENT, Role.READ_ONLY)


def permissions_for(role: str, available: list[str]) -> list[str]:
    patterns = ROLE_PERMISSIONS[role]
    return [perm for perm in available if any(fnmatch(perm, pattern) for pattern in patterns)]


def sync_roles(apps=None, **_kwargs) -> None:
    """Create the role groups and give each its permissions (idempotent)."""
    if apps is None:
        from django.apps import apps as global_apps

        apps = global_apps
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = {
        f"{app_label}.{codename}": pk
        for pk, app_label, codename in Permission.objects.values_list("pk", "content_type__app_label", "codename")
    }
    for role in ROLE_PERMISSIONS:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set([perms[name] for name in permissions_for(role, list(perms))])
