"""Compare bonus operations with the credit deals synced from MT5 now, and list what disagrees (see bonuses/reconciliation.py)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from bonuses.reconciliation import reconciliation_run_now
from bonuses.reconciliation_models import RunStatus, RunTrigger


class Command(BaseCommand):
    help = "Reconcile bonus operations with MT5 credit deals (every login with a bonus, or --login ones)."

    def add_arguments(self, parser):
        parser.add_argument("--login", type=int, action="append", default=[], help="Only this MT5 login (repeatable)")

    def handle(self, *args, **options):
        run = reconciliation_run_now(actor="command", trigger=RunTrigger.COMMAND, logins=options["login"])
        self.stdout.write(
            f"run #{run.pk} {run.status}: {run.accounts_checked} account(s) checked "
            f"({run.accounts_not_synced} not synced), {run.operations_checked} operation(s), "
            f"{run.deals_checked} credit deal(s); {run.found} mismatch(es), {run.new} new, {run.cleared} cleared"
            + (f"; {run.error}" if run.error else "")
        )
        if run.status not in (RunStatus.DONE,):
            raise SystemExit(1)
