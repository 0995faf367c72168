"""Everything the run command does before starting the processes, in one process (one Django start-up, not six)."""

from __future__ import annotations

import os

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Migrate, install the periodic jobs and load every demo (idempotent); then list the demo logins."

    def add_arguments(self, parser):
        parser.add_argument("--logins-file", help="also write the demo logins to this file (the run command prints it)")

    def handle(self, *args, logins_file: str | None = None, **options):
        call_command("migrate", interactive=False, verbosity=0)
        with open(os.devnull, "w") as quiet:
            call_command("setup_periodic_tasks", verbosity=0, stdout=quiet)
        for name in ("seed_demo", "seed_copy_demo", "seed_bonus_demo"):
            call_command(name, stdout=self.stdout, stderr=self.stderr)
        if logins_file:
            with open(logins_file, "w") as fh:
                call_command("seed_demo", list_logins=True, stdout=fh)
