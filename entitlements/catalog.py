"""The four plans every installation starts with (Free, Basic, Pro, Enterprise); staff edit them in the admin."""

from decimal import Decimal
from typing import Any

# fmt: off
ALL_OFF = dict(analytics_advanced=False, copy_trading=False, web_terminal=False, templates=False, rules=False,
               systeme_sync=False, api_access=False)
PLANS: list[dict[str, Any]] = [
    dict(slug="free", name="Free", rank=0, description="One MT5 account, 30 days of history, basic analytics.",
         price_monthly=Decimal("0"), price_yearly=Decimal("0"), trial_days=0,
         limit_accounts=1, limit_history_days=30, limit_copy_links=0, limit_slaves_per_master=0, **ALL_OFF),
    dict(slug="basic", name="Basic", rank=1, description="A few accounts, a year of history, copy trading and templates.",
         price_monthly=Decimal("9.00"), price_yearly=Decimal("90.00"), trial_days=7,
         limit_accounts=3, limit_history_days=365, limit_copy_links=2, limit_slaves_per_master=2,
         **{**ALL_OFF, "copy_trading": True, "templates": True}),
    dict(slug="pro", name="Pro", rank=2, description="Unlimited accounts and history, advanced analytics, "
         "web terminal, rules and API access.",
         price_monthly=Decimal("15.00"), price_yearly=Decimal("150.00"), trial_days=14,
         limit_accounts=None, limit_history_days=None, limit_copy_links=25, limit_slaves_per_master=10,
         **{**ALL_OFF, "analytics_advanced": True, "copy_trading": True, "web_terminal": True, "templates": True,
            "rules": True, "api_access": True}),
    dict(slug="enterprise", name="Enterprise", rank=3, description="Everything, unlimited, with Systeme.io sync.",
         price_monthly=Decimal("99.00"), price_yearly=Decimal("990.00"), trial_days=14,
         limit_accounts=None, limit_history_days=None, limit_copy_links=None, limit_slaves_per_master=None,
         **{key: True for key in ALL_OFF}),
]
# fmt: on


def seed_plans(plans) -> int:
    """Create the plans missing from ``plans`` (a Plan manager); existing rows are left alone (staff edit them)."""
    created = 0
    for plan in PLANS:
        created += plans.get_or_create(slug=plan["slug"], defaults=plan)[1]
    return created
