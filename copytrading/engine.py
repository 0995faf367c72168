"""The copy engine: a master heartbeat's diff is planned against its links and written in one transaction.

Reads what planning needs (``copytrading.planning`` holds the rules of a copy and does no I/O), then writes the
plan: in one statement on PostgreSQL (``copytrading.sql``), through the ORM elsewhere.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from config.errors import ServiceError
from mt5bridge.commands import command_prepare, commands_enqueue_bulk

from . import diff as d
from . import sql
from .access import config_refusals
from .choices import CopyStatus
from .models import CopiedPosition, CopyEvent, CopyLink, link_id_of
from .planning import Plan, PlanInputs, Skip, follow_up_tickets, needs_priority_check, plan_copies
from .selectors import AccountConfig, slave_figures


def copy_master_state(config: AccountConfig, previous: Any, current: Any) -> list:
    """The whole copy step of one master heartbeat: the commands it queued."""
    if not config.links_out or previous is None:
        return []
    intents = d.state_diff(previous, current)
    if not intents:
        return []
    links = config.links_out
    inputs = PlanInputs(
        rows_by_key=copy_rows(links, intents),
        held=held_by_higher_priority(links, intents),
        refused=config_refusals(config),
    )
    return apply_plan(plan_copies(links, intents, current, inputs, slave_figures))


def copy_rows(links: list[CopyLink], intents: list[d.Intent]) -> dict[tuple[int, int], list[CopiedPosition]]:
    """The live copy rows of the tickets an intent changes, by (link id, master ticket), oldest first."""
    tickets = follow_up_tickets(intents)
    rows_by_key: dict[tuple[int, int], list[CopiedPosition]] = {}
    if not tickets:
        return rows_by_key
    for row in CopiedPosition.objects.filter(
        link__in=[link.id for link in links],
        master_ticket__in=tickets,
        status__in=(CopyStatus.PENDING, CopyStatus.OPEN, CopyStatus.CLOSED_ON_SLAVE),
    ).order_by("id"):
        rows_by_key.setdefault((row.link_id, row.master_ticket), []).append(row)
    return rows_by_key


def held_by_higher_priority(links: list[CopyLink], intents: list[d.Intent]) -> dict[int, dict[str, set[str]]]:
    """Slave symbols that another master with a better priority holds open, for slaves fed by several masters."""
    if not needs_priority_check(intents):
        return {}
    links = [link for link in links if getattr(link, "slave_is_shared", True)]
    if not links:
        return {}
    slave_ids = [link.slave_id for link in links]
    others = list(
        CopyLink.objects.filter(slave_id__in=slave_ids, active=True)
        .exclude(id__in=[link.id for link in links])
        .values_list("id", "slave_id", "priority")
    )
    if not others:
        return {}
    held_rows = CopiedPosition.objects.filter(
        link_id__in=[o[0] for o in others], status__in=(CopyStatus.PENDING, CopyStatus.OPEN)
    ).values_list("link_id", "slave_symbol")
    priority = {o[0]: (o[1], o[2]) for o in others}
    result: dict[int, dict[str, set[str]]] = {}
    for link in links:
        for other_id, symbol in held_rows:
            slave_id, other_priority = priority[other_id]
            if slave_id == link.slave_id and other_priority < link.priority:
                result.setdefault(link.id, {}).setdefault(str(link.slave_id), set()).add(symbol)
    return result


def prepare_commands(plan: Plan, now) -> list:
    """Validate and number the plan's commands; one link's impossible order (a volume above the protocol's
    limit) is dropped with a visible reason instead of sinking the whole batch."""
    commands, valid, memo = [], [], {}
    for spec in plan.specs:
        try:
            commands.append(command_prepare(spec, now, memo=memo))
        except ServiceError as exc:
            if exc.code != "invalid_command":
                raise
            link = plan.links.get(link_id_of(spec.origin_ref))
            if link is not None:
                plan.events.append(
                    Skip(
                        link_id=link.id,
                        master_account_id=str(link.master_id),
                        slave_account_id=str(link.slave_id),
                        intent=spec.kind,
                        reason_code="invalid_order",
                        reason=exc.message[:255],
                        symbol=str(spec.params.get("symbol", ""))[:64],
                    )
                )
            plan.new_rows = [r for r in plan.new_rows if r.key != spec.idempotency_key]
            continue
        valid.append(spec)
    plan.specs = valid
    return commands


def apply_plan(plan: Plan) -> list:
    """Write the plan: commands (deduplicated by idempotency key), new copy rows, row changes and skip events,
    atomically. Returns the heartbeat's commands (in one statement: only those stored now; through the ORM:
    a repeated key gives the command stored first)."""
    if not (plan.specs or plan.changed_rows or plan.events):
        return []
    now = timezone.now()
    commands = prepare_commands(plan, now)
    if plan.refused or plan.cleared:
        # Rare (a gate refused a copy, or lets a link copy again): the link's record joins the same transaction.
        with transaction.atomic():
            refusals_record(plan, now)
            return _write(plan, commands, now)
    return _write(plan, commands, now)


def _write(plan: Plan, commands: list, now) -> list:
    if writes_in_one_statement():
        return sql.heartbeat_write(plan, commands, now)
    return _write_with_orm(plan)


def refusals_record(plan: Plan, now) -> None:
    """Show on each link why its copies were refused (and when), or that it copies again."""
    for link_id, (code, reason) in plan.refused.items():
        CopyLink.objects.filter(pk=link_id).update(refusal_code=code, refusal_reason=reason, refused_at=now)
    if plan.cleared:
        CopyLink.objects.filter(pk__in=plan.cleared).update(refusal_code="", refusal_reason="")
    # The cached links follow, so this process does not record the same thing again on the next heartbeat.
    for link_id, (code, reason) in plan.refused.items():
        link = plan.links[link_id]
        link.refusal_code, link.refusal_reason, link.refused_at = code, reason, now
    for link_id in plan.cleared:
        plan.links[link_id].refusal_code = plan.links[link_id].refusal_reason = ""


def writes_in_one_statement() -> bool:
    """PostgreSQL takes the whole heartbeat in one statement; other databases go through the ORM."""
    return connection.vendor == "postgresql"


def _write_with_orm(plan: Plan) -> list:
    """Other databases (the embedded SQLite default): the same writes through the ORM, in one transaction."""
    with transaction.atomic():
        commands = commands_enqueue_bulk(plan.specs) if plan.specs else []
        by_key = {c.idempotency_key: c for c in commands}
        rows = [
            CopiedPosition(
                link_id=r.link_id,
                slave_account_id=r.slave_account_id,
                kind=r.kind,
                master_ticket=r.master_ticket,
                master_symbol=r.master_symbol,
                master_volume=r.master_volume,
                slave_symbol=r.slave_symbol,
                slave_side=r.slave_side,
                slave_volume=r.slave_volume,
                status=CopyStatus.PENDING,
                copy_id=r.copy_id,
                open_command_id=by_key[r.key].id,
            )
            for r in plan.new_rows
            if r.key in by_key
        ]
        if rows:
            # A repeated key returns the first command, whose copy row exists: the unique id skips it.
            CopiedPosition.objects.bulk_create(rows, ignore_conflicts=True)
        for key, row in plan.close_keys:
            command = by_key.get(key)
            if command is not None:
                row.close_command_id = command.id
        if plan.changed_rows:
            CopiedPosition.objects.bulk_update(
                list(plan.changed_rows.values()),
                ["kind", "master_volume", "slave_volume", "close_requested", "close_command_id"],
            )
        if plan.events:
            CopyEvent.objects.bulk_create(CopyEvent(**sql.skip_row(e)) for e in plan.events)
    return commands
