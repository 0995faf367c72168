"""Demo bonus campaigns, one per type, through the same services staff use (idempotent; run after seed_demo)."""

from __future__ import annotations

from decimal import Decimal

from django.core.management.base import BaseCommand

from bonuses.choices import BonusType, CampaignStatus, Trigger
from bonuses.models import Campaign
from bonuses.services.campaigns import campaign_create, campaign_set_status

ACTOR = "system:seed_bonus_demo"

CAMPAIGNS = [
    {
        "name": "Welcome 50% (dynamic leverage)",
        "bonus_type": BonusType.DYNAMIC_LEVERAGE,
        "bonus_percent": Decimal("50"),
        "max_bonus_amount": Decimal("5000"),
        "min_deposit": Decimal("100"),
        "expiry_days": 90,
        "triggers": [Trigger.AUTO_DEPOSIT],
        "status": CampaignStatus.ACTIVE,
    },
    {
        "name": "Promo WELCOME20 (fixed leverage)",
        "bonus_type": BonusType.FIXED_LEVERAGE,
        "bonus_percent": Decimal("20"),
        "max_bonus_amount": Decimal("1000"),
        "promo_codes": ["WELCOME20"],
        "triggers": [Trigger.PROMO_CODE],
        "status": CampaignStatus.ACTIVE,
    },
    {
        "name": "Trade-to-convert 30% (convertible)",
        "bonus_type": BonusType.CONVERTIBLE,
        "bonus_percent": Decimal("30"),
        "lots_per_unit": Decimal("0.1"),
        "unit_amount": Decimal("2.00"),
        "triggers": [Trigger.AUTO_DEPOSIT],
        "status": CampaignStatus.DRAFT,
    },
]


class Command(BaseCommand):
    help = "Demo bonus campaigns: type A active on deposit, type B on a promo code, type C as a draft (idempotent)."

    def handle(self, *args, **options):
        made = 0
        for spec in CAMPAIGNS:
            values = dict(spec)
            status = values.pop("status")
            if Campaign.objects.filter(name=values["name"]).exists():
                continue
            campaign = campaign_create(actor=ACTOR, **values)
            if status != campaign.status:
                campaign_set_status(actor=ACTOR, campaign=campaign, status=status)
            made += 1
        self.stdout.write(self.style.SUCCESS(f"Bonus demo ready: {len(CAMPAIGNS)} campaigns ({made} new)."))
