"""Demo bonus campaigns, one per type, through the same services staff use (idempotent; run after seed_demo).

Each campaign also fires on the deposits of one demo client, picked by its MT5 Lead Source (an agent code):
``run_demo_flows`` deposits and withdraws on those clients every ~30 s, so the monitor grants, trims and
converts bonuses live. A bonus that ended leaves room for the next deposit's (one open bonus at a time).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.management.base import BaseCommand

from bonuses.choices import BonusType, CampaignStatus, Trigger
from bonuses.models import Campaign
from bonuses.services.campaigns import campaign_create, campaign_set_status, campaign_update

ACTOR = "system:seed_bonus_demo"

CAMPAIGNS = [
    {
        "name": "Welcome 50% (dynamic leverage)",
        "bonus_type": BonusType.DYNAMIC_LEVERAGE,
        "bonus_percent": Decimal("50"),
        "max_bonus_amount": Decimal("5000"),
        "min_deposit": Decimal("100"),
        "expiry_days": 90,
        "triggers": [Trigger.AUTO_DEPOSIT, Trigger.AGENT_CODE],
        "agent_codes": ["DEMO-A"],
        "one_per_account": False,
        "status": CampaignStatus.ACTIVE,
    },
    {
        "name": "Promo WELCOME20 (fixed leverage)",
        "bonus_type": BonusType.FIXED_LEVERAGE,
        "bonus_percent": Decimal("20"),
        "max_bonus_amount": Decimal("1000"),
        "promo_codes": ["WELCOME20"],
        "triggers": [Trigger.PROMO_CODE, Trigger.AGENT_CODE],
        "agent_codes": ["DEMO-B"],
        "one_per_account": False,
        "status": CampaignStatus.ACTIVE,
    },
    {
        "name": "Trade-to-convert 30% (convertible)",
        "bonus_type": BonusType.CONVERTIBLE,
        "bonus_percent": Decimal("30"),
        "lots_per_unit": Decimal("0.1"),
        "unit_amount": Decimal("2.00"),
        "triggers": [Trigger.AUTO_DEPOSIT, Trigger.AGENT_CODE],
        "agent_codes": ["DEMO-C"],
        "one_per_account": False,
        "status": CampaignStatus.ACTIVE,
    },
]


# Campaigns seeded before the demo flows existed get the fields those need.
FLOW_FIELDS = ("triggers", "agent_codes", "one_per_account")


class Command(BaseCommand):
    help = "Demo bonus campaigns, one per type, each firing on its demo client's deposits (idempotent)."

    def handle(self, *args, **options):
        made = 0
        for spec in CAMPAIGNS:
            values = dict(spec)
            status = values.pop("status")
            campaign = Campaign.objects.filter(name=values["name"]).first()
            if campaign is None:
                campaign = campaign_create(actor=ACTOR, **values)
                made += 1
            elif campaign.status == CampaignStatus.ARCHIVED:
                continue  # staff archived it: leave it alone
            else:
                changes = {f: values[f] for f in FLOW_FIELDS if getattr(campaign, f) != values[f]}
                if changes:
                    campaign = campaign_update(actor=ACTOR, campaign=campaign, **changes)
            if campaign.status == CampaignStatus.DRAFT and status != campaign.status:
                campaign_set_status(actor=ACTOR, campaign=campaign, status=status)
        self.stdout.write(self.style.SUCCESS(f"Bonus demo ready: {len(CAMPAIGNS)} campaigns ({made} new)."))
