"""The plan models now belong to entitlements (state only: the billing_* tables and their rows stay as they are)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_seed_plans"),
        ("entitlements", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="BillingPause"),
                migrations.DeleteModel(name="PlanAssignment"),
                migrations.DeleteModel(name="PlanChange"),
                migrations.DeleteModel(name="UserUsage"),
                migrations.DeleteModel(name="Plan"),
            ],
            database_operations=[],
        ),
    ]
