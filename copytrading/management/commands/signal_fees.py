"""Settle signal followers' finished months and charge what is due, now (the nightly job's work, on demand)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from copytrading.signal_services import fees_run


class Command(BaseCommand):
    help = "Work out each signal follower's fee for every finished month not settled yet, and charge the fees due."

    def handle(self, *args, **options):
        result = fees_run()
        self.stdout.write(
            f"months settled: {result['settled']}, fees charged: {result['charged']}, "
            f"not charged: {result['not_charged']}"
        )
