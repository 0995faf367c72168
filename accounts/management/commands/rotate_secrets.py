"""Re-encrypt every stored secret under the first key of FIELD_ENCRYPTION_KEYS.

Rotation without downtime: put the new key first (keep the old one after it), deploy,
run this command, then drop the old key. Rows are rotated in small batches, each in its
own transaction, so the app keeps running and a rerun continues where it stopped.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import models, transaction

from accounts import vault


def secret_fields() -> list[tuple[type[models.Model], str]]:
    """(model, field name) of every encrypted column, in every installed app.

    The vault's columns are binary fields named ``*_encrypted``: found through the app registry, so an app
    that adds one is rotated with no change here (and accounts imports no app above it).
    """
    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if isinstance(field, models.BinaryField) and field.name.endswith("_encrypted")
    ]


class Command(BaseCommand):
    help = "Re-encrypt all stored secrets under the newest FIELD_ENCRYPTION_KEYS key."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size: int, **options):
        total, failed = 0, 0
        for model, field in secret_fields():
            pks = list(model.objects.values_list("pk", flat=True))
            for start in range(0, len(pks), batch_size):
                with transaction.atomic():
                    rows = model.objects.select_for_update().filter(pk__in=pks[start : start + batch_size])
                    for row in rows.only("pk", field):
                        token = getattr(row, field)
                        if not token:
                            continue
                        try:
                            setattr(row, field, vault.rotate(token))
                        except vault.SecretUnreadable:
                            failed += 1
                            self.stderr.write(f"{model._meta.label} {row.pk}: not readable with any configured key")
                            continue
                        row.save(update_fields=[field])
                        total += 1
        self.stdout.write(self.style.SUCCESS(f"Rotated {total} secret(s); {failed} unreadable."))
        if failed:
            raise SystemExit(1)
