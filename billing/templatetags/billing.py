"""Template tags for feature gates: show a control enabled, or disabled with an upgrade link naming the plan."""

from __future__ import annotations

from django import template

from entitlements.gates import feature_gate as _feature_gate
from entitlements.selectors import local_mode

register = template.Library()


@register.simple_tag(takes_context=True)
def feature_gate(context, feature: str) -> dict:
    """``{% feature_gate "web_terminal" as gate %}`` → allowed, required_plan_name, upgrade_url."""
    return _feature_gate(context["request"].user, feature)


@register.inclusion_tag("billing/_gated_control.html", takes_context=True)
def gated_control(context, feature: str, label: str, url: str = "", method: str = "get") -> dict:
    """A link or button for ``feature``: active when the plan has it, otherwise disabled with an upgrade link."""
    return {
        "gate": _feature_gate(context["request"].user, feature),
        "label": label,
        "url": url,
        "method": method.lower(),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("billing/_local_mode_banner.html")
def billing_local_mode_banner() -> dict:
    return {"local_mode": local_mode()}
