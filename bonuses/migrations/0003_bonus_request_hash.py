"""Bonus.request_hash: the digest of a manual assignment's request, checked on a repeated Idempotency-Key."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("bonuses", "0002_audit_insert_only"),
    ]

    operations = [
        migrations.AddField(
            model_name="bonus",
            name="request_hash",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
