"""The seed's three Systeme.io workflows as default automation rules (edit them in the admin)."""

from decimal import Decimal

from django.db import migrations

DEFAULT_RULES = [
    {
        "slug": "profitable-trades",
        "name": "Profitable trades",
        "condition": "profit_above",
        "threshold": Decimal("500"),
        "action": "add_tag",
        "tag": "mt5-profitable-trades",
        "description": "Profit this month above 500: starts the workflow for profitable traders.",
    },
    {
        "slug": "loss-recovery",
        "name": "Loss recovery",
        "condition": "loss_beyond_percent",
        "threshold": Decimal("10"),
        "action": "add_tag",
        "tag": "mt5-loss-recovery",
        "description": "Loss this month beyond 10 % of the month's starting balance: starts the recovery workflow.",
    },
    {
        "slug": "high-activity",
        "name": "High activity",
        "condition": "trades_per_day_above",
        "threshold": Decimal("20"),
        "action": "add_tag",
        "tag": "mt5-high-activity",
        "description": "More than 20 trades opened today: starts the high-activity workflow.",
    },
]


def create_rules(apps, schema_editor):
    AutomationRule = apps.get_model("integrations", "AutomationRule")
    for rule in DEFAULT_RULES:
        AutomationRule.objects.get_or_create(slug=rule["slug"], defaults=rule)


def remove_rules(apps, schema_editor):
    AutomationRule = apps.get_model("integrations", "AutomationRule")
    AutomationRule.objects.filter(slug__in=[rule["slug"] for rule in DEFAULT_RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("integrations", "0001_initial")]

    operations = [migrations.RunPython(create_rules, remove_rules)]
