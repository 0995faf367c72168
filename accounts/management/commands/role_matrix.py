"""Print the role × capability matrix as a Markdown table (the one in docs/security.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from accounts.roles import MATRIX, PSEUDO_CAPABILITIES, ROLE_NAMES, Scope

CELL = {Scope.ALL: "all", Scope.OWN: "own", None: "—"}


def matrix_markdown() -> str:
    head = ["capability", "what it allows", *ROLE_NAMES]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for cap in MATRIX:
        cells = [f"`{cap.name}`", cap.label, *(CELL[cap.scope(role)] for role in ROLE_NAMES)]
        rows.append("| " + " | ".join(cells) + " |")
    for name, label in PSEUDO_CAPABILITIES.items():
        rows.append("| " + " | ".join([f"`{name}`", label, *("·" for _ in ROLE_NAMES)]) + " |")
    return "\n".join(rows) + "\n"


class Command(BaseCommand):
    help = "Print the role × capability matrix as a Markdown table."

    def handle(self, *args, **options):
        self.stdout.write(matrix_markdown(), ending="")
