"""What the plan gate answers, as plain data: allowed, or a refusal naming the plan that unlocks more.

Kept free of the error types (``config.errors``) so that the API-call throttle, which DRF loads while
``rest_framework.views`` itself is being imported, can ask the gate without a circle; ``entitlements.gates``
turns a refusal into the 403 ``NotAllowed`` every other caller gets.

Staff roles (Super Admin, CRM, Support, Read-Only) are never refused by a trader's plan: the plans sell
features to traders, and the back office is not a trader.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import reverse

from accounts.permissions import is_staff_role

from .models import FEATURE_LABELS, FEATURES, LIMIT_LABELS, LIMITS
from .selectors import plan_for_user, plan_unlocking_feature, plan_unlocking_limit


@dataclass(frozen=True)
class Refusal:
    """Why the gate says no: the 403 body's code, message and details."""

    code: str
    message: str
    details: dict = field(default_factory=dict)


def check_name(name: str, known: tuple[str, ...], kind: str) -> None:
    if name not in known:
        raise ValueError(f"unknown {kind} {name!r}; one of {', '.join(known)}")


def upgrade_url() -> str:
    return reverse("billing:pricing")


def exempt(user) -> bool:
    """Staff are never held to a trader's plan (a user object; a bare id is never staff here)."""
    return hasattr(user, "is_authenticated") and is_staff_role(user)


def feature_state(user, feature: str) -> dict:
    """What the UI needs to show a control enabled, or disabled with an upgrade link."""
    check_name(feature, FEATURES, "feature")
    plan = plan_for_user(user)
    allowed = bool(getattr(plan, feature)) or exempt(user)
    unlock = None if allowed else plan_unlocking_feature(feature)
    return {
        "feature": feature,
        "label": FEATURE_LABELS[feature],
        "allowed": allowed,
        "current_plan": plan.slug,
        "required_plan": unlock.slug if unlock else None,
        "required_plan_name": unlock.name if unlock else None,
        "upgrade_url": upgrade_url(),
    }


def feature_refusal(user, feature: str) -> Refusal | None:
    """None when ``user`` may use ``feature``; otherwise the refusal naming the cheapest plan that has it."""
    check_name(feature, FEATURES, "feature")
    plan = plan_for_user(user)
    if getattr(plan, feature) or exempt(user):  # the plan first: the staff check reads the user's groups
        return None
    gate = feature_state(user, feature)
    if gate["required_plan"]:
        message = f"{gate['label']} needs the {gate['required_plan_name']} plan; you are on {plan.name}."
    else:
        message = f"{gate['label']} is not available on any plan; contact us."
    return Refusal(
        "plan_required",
        message,
        {
            "feature": feature,
            "current_plan": plan.slug,
            "required_plan": gate["required_plan"],
            "upgrade_url": gate["upgrade_url"],
        },
    )


def limit_refusal(user, limit: str, current: int) -> Refusal | None:
    """None while ``current`` is under the plan's ``limit``; otherwise the refusal naming a plan that allows more."""
    check_name(limit, LIMITS, "limit")
    plan = plan_for_user(user)
    allowed = plan.limit(limit)
    if allowed is None or current < allowed or exempt(user):
        return None
    unlock = plan_unlocking_limit(limit, current + 1)
    label = LIMIT_LABELS[limit]
    if unlock is not None and unlock.slug != plan.slug:
        more = "unlimited" if unlock.limit(limit) is None else unlock.limit(limit)
        message = f"The {plan.name} plan allows {allowed} {label}; the {unlock.name} plan allows {more}."
    else:
        message = f"The {plan.name} plan allows {allowed} {label}, the most any plan offers; contact us."
        unlock = None
    return Refusal(
        "plan_limit",
        message,
        {
            "limit": limit,
            "allowed": allowed,
            "current": current,
            "current_plan": plan.slug,
            "required_plan": unlock.slug if unlock else None,
            "upgrade_url": upgrade_url(),
        },
    )
