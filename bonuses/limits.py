"""Money limits of manual bonus assignment: the most one person may grant at once, per role."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from accounts.choices import Role

# The one place that says how much credit each role may grant by hand, per bonus. Values come
# from the settings named here (environment variables); None there means no role limit (the
# campaign's own amount rules still cap every grant). A role missing from this dict may not
# grant at all, so a broker's custom group with the assign permission fails closed.
MANUAL_ASSIGN_LIMIT_SETTINGS: dict[str, str] = {
    Role.SUPER_ADMIN: "BONUS_MANUAL_LIMIT_SUPER_ADMIN",
    Role.SUPPORT_AGENT: "BONUS_MANUAL_LIMIT_SUPPORT_AGENT",
}

UNLIMITED = None


def manual_assign_limits() -> dict[str, Decimal | None]:
    """Role name → the most one manual grant may give (None: no role limit), read from settings now."""
    return {role: getattr(settings, name) for role, name in MANUAL_ASSIGN_LIMIT_SETTINGS.items()}


def manual_assign_limit(user) -> tuple[bool, Decimal | None, str]:
    """(has a limit declared, the limit, the role it comes from) for ``user``.

    A person holding several roles gets the most generous of them (the roles' permissions add
    up the same way). A superuser counts as a Super Admin.
    """
    limits = manual_assign_limits()
    active = getattr(user, "is_authenticated", False) and getattr(user, "is_active", False)
    roles = set(user.groups.values_list("name", flat=True)) if active else set()
    if getattr(user, "is_superuser", False):
        roles.add(Role.SUPER_ADMIN)
    held = [(limits[role], str(role)) for role in sorted(roles) if role in limits]
    if not held:
        return False, Decimal(0), ""
    for limit, role in held:
        if limit is UNLIMITED:
            return True, None, role
    bounded = [(limit, role) for limit, role in held if limit is not None]
    limit, role = max(bounded, key=lambda item: item[0])
    return True, limit, role
