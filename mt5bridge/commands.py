"""The EA command queue: enqueue (one or many), cancel, retry, deliver, and apply the EA's results.

PostgreSQL holds the truth; Redis caches each account's open commands so a heartbeat finds them
without a query. A command is cached only after its row is committed (``on_commit``); a periodic
reconciliation per account repairs the cache after a crash between the two.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, CharField, F, Value, When
from django.db.models.functions import Concat, Left
from django.utils import timezone

from config.errors import Conflict, ServiceError
from mt5bridge import events, sql
from mt5bridge.ea import store
from mt5bridge.ea.models import OPEN_STATUSES, Command, CommandKind, CommandStatus
from mt5bridge.ea.protocol import (
    COMMENT_LENGTH,
    CommandResult,
    ProtocolError,
    command_payload,
    validate_command_params,
)

logger = logging.getLogger(__name__)

COMMAND_KINDS = (
    "open_market",
    "place_pending",
    "close",
    "close_partial",
    "modify_sltp",
    "modify_pending",
    "cancel_pending",
    "close_all",
    "pause",
    "resume",
)
assert set(COMMAND_KINDS) == set(CommandKind.values)
# A command's origin is opaque to the bridge: a short lowercase kind chosen by the app that queues it, plus a
# reference (origin_ref) that app reads back from the result. Only their shape is checked here.
ORIGIN_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,15}")
ORIGIN_REF_LENGTH = 64


@dataclass(frozen=True)
class CommandSpec:
    account_id: str
    kind: str
    params: dict
    origin: str
    expires_at: datetime | None = None
    idempotency_key: str | None = None
    origin_ref: str = ""


# --- enqueue ---


def payload_of(command: Command | NewCommand) -> dict:
    return command_payload(
        command_id=command.id,
        kind=command.kind,
        params=command.params,
        created_at=command.created_at,
        expires_at=command.expires_at,
    )


def commands_cache_after_commit(commands: Iterable[Command | NewCommand]) -> None:
    """Push the commands to their accounts' Redis queues once the transaction that stored them commits."""
    by_account: dict[str, list[dict]] = defaultdict(list)
    for command in commands:
        by_account[str(command.account_id)].append(payload_of(command))
    if by_account:
        transaction.on_commit(lambda: _safe_push(by_account))


def _safe_push(by_account: dict[str, list[dict]]) -> None:
    try:
        store.queue_push(by_account)
    except Exception:  # Redis down: the rows are committed; reconciliation caches them later
        logger.exception("could not cache %d accounts' new commands in Redis", len(by_account))


@dataclass(slots=True)
class NewCommand:
    """A validated command with its id, not stored yet: what a caller inserting many at once in raw SQL needs."""

    id: uuid.UUID
    account_id: str
    kind: str
    params: dict
    origin: str
    created_at: datetime
    expires_at: datetime | None = None
    idempotency_key: str | None = None
    origin_ref: str = ""
    intent: str = ""
    created_by_id: int | None = None


def _validated_params(kind: str, params: dict, memo: dict | None) -> dict:
    """``validate_command_params``; with a memo, parameters that differ only in the comment are checked once.

    One master trade copied to many slaves gives the same symbol, side, volume and stops on most of them;
    only the comment (the copy id) differs, and a comment is valid when it is a string of at most 31 characters.
    """
    if memo is None or not isinstance(params, dict):
        return validate_command_params(kind, params)
    comment = params.get("comment")
    if comment is not None and not (isinstance(comment, str) and len(comment) <= COMMENT_LENGTH):
        return validate_command_params(kind, params)  # raises, naming the field
    try:
        key = (kind, bool(comment), *((k, type(v), v) for k, v in params.items() if k != "comment"))
        clean = memo.get(key)
    except TypeError:  # an unhashable value (a list): no memo
        return validate_command_params(kind, params)
    if clean is None:
        clean = memo[key] = validate_command_params(kind, params)
        return clean
    clean = dict(clean)
    if comment:
        clean["comment"] = comment
    return clean


def command_prepare(spec: CommandSpec, now: datetime, by=None, *, memo: dict | None = None) -> NewCommand:
    """Check a spec (origin, parameters, key) and give it an id. Raises ServiceError(code="invalid_command").

    ``memo``: one dict shared by the specs of one batch (see ``_validated_params``)."""
    if not (isinstance(spec.origin, str) and ORIGIN_PATTERN.fullmatch(spec.origin)):
        raise ServiceError(
            f"origin {spec.origin!r} must be 1 to 16 lowercase letters, digits or underscores", code="invalid_origin"
        )
    if not isinstance(spec.origin_ref, str) or len(spec.origin_ref) > ORIGIN_REF_LENGTH:
        raise ServiceError(
            f"origin_ref must be a string of at most {ORIGIN_REF_LENGTH} characters", code="invalid_origin"
        )
    try:
        params = _validated_params(spec.kind, spec.params, memo)
    except ProtocolError as exc:
        raise ServiceError(
            f"{exc.field or 'params'}: {exc.message}", code="invalid_command", details={"field": exc.field}
        ) from exc
    if spec.idempotency_key is not None and not (0 < len(spec.idempotency_key) <= 100):
        raise ServiceError("idempotency_key must be 1 to 100 characters", code="invalid_command")
    return NewCommand(
        id=uuid.uuid4(),
        account_id=spec.account_id,
        kind=spec.kind,
        params=params,
        origin=spec.origin,
        created_at=now,
        expires_at=spec.expires_at,
        idempotency_key=spec.idempotency_key,
        origin_ref=spec.origin_ref,
        created_by_id=getattr(by, "pk", None),
    )


def _build(spec: CommandSpec, now: datetime, by=None) -> Command:
    new = command_prepare(spec, now, by)
    return Command(
        id=new.id,
        account_id=new.account_id,
        kind=new.kind,
        params=new.params,
        origin=new.origin,
        created_at=now,
        expires_at=new.expires_at,
        idempotency_key=new.idempotency_key,
        origin_ref=new.origin_ref,
        created_by=by,
    )


def commands_insert_sql(commands: list[NewCommand]) -> tuple[str, list]:
    """PostgreSQL: one ``INSERT`` of many prepared commands that skips a repeated (account, idempotency key)
    and returns the ids it did insert (``RETURNING id``).

    The rows travel as one JSON parameter (``jsonb_to_recordset``): encoding it is a single C call, where
    per-column arrays cost the driver microseconds per value. A caller may put the statement in a ``WITH``
    next to its own inserts, so a whole batch is one statement and one round trip; it then caches the
    inserted commands with ``commands_cache_after_commit``.
    """
    iso: dict = {None: None}  # a batch shares a few timestamps: format each once

    def text(moment: datetime | None) -> str | None:
        found = iso.get(moment, iso)
        if found is iso:
            found = iso[moment] = moment.isoformat()
        return found

    rows = json.dumps(
        [
            {
                "id": str(c.id),
                "account_id": str(c.account_id),
                "kind": c.kind,
                "params": c.params,
                "origin": c.origin,
                "expires_at": text(c.expires_at),
                "idempotency_key": c.idempotency_key,
                "origin_ref": c.origin_ref,
                "intent": c.intent,
                "created_by_id": c.created_by_id,
                "created_at": text(c.created_at),
            }
            for c in commands
        ],
        separators=(",", ":"),
    )
    return _insert_sql(), [CommandStatus.PENDING.value, rows]


@functools.cache
def _insert_sql() -> str:
    return (
        f"INSERT INTO {Command._meta.db_table} (id, account_id, kind, params, origin, status, retcode, message, "
        "result, created_at, delivered_at, delivery_count, finished_at, expires_at, idempotency_key, origin_ref, "
        "intent, retry_of_id, created_by_id) "
        "SELECT c.id, c.account_id, c.kind, c.params, c.origin, %s, NULL, '', '{}'::jsonb, c.created_at, NULL, 0, "
        "NULL, c.expires_at, c.idempotency_key, c.origin_ref, c.intent, NULL, c.created_by_id "
        "FROM jsonb_to_recordset(%s::jsonb) AS c(id uuid, account_id uuid, kind text, params jsonb, origin text, "
        "expires_at timestamptz, idempotency_key text, origin_ref text, intent text, created_by_id bigint, "
        "created_at timestamptz) "
        "ON CONFLICT DO NOTHING RETURNING id"
    )


def command_enqueue(
    *,
    account_id,
    kind: str,
    params: dict,
    origin: str,
    expires_at: datetime | None = None,
    idempotency_key: str | None = None,
    origin_ref: str = "",
    intent: str = "",
    by=None,
) -> Command:
    """Queue one command for an account's EA. With an idempotency key, a repeat returns the first command."""
    spec = CommandSpec(str(account_id), kind, params, origin, expires_at, idempotency_key, origin_ref)
    command = _build(spec, timezone.now(), by)
    command.intent = intent[:100]
    if idempotency_key is not None:
        existing = Command.objects.filter(account_id=account_id, idempotency_key=idempotency_key).first()
        if existing:
            return existing
    try:
        with transaction.atomic():
            command.save(force_insert=True)
            commands_cache_after_commit([command])
    except IntegrityError as exc:
        if idempotency_key is not None:
            existing = Command.objects.filter(account_id=account_id, idempotency_key=idempotency_key).first()
            if existing:
                return existing
        raise ServiceError("the trading account does not exist", code="invalid_account") from exc
    return command


def commands_enqueue_bulk(specs: list[CommandSpec], *, by=None) -> list[Command]:
    """Queue many commands in one transaction and one INSERT.

    Repeats by (account, idempotency key) are not inserted again; the existing command is returned in their place.
    """
    if not specs:
        return []
    now = timezone.now()
    built = [_build(spec, now, by) for spec in specs]
    keyed = [c for c in built if c.idempotency_key is not None]
    try:
        with transaction.atomic():
            Command.objects.bulk_create(built, ignore_conflicts=bool(keyed), batch_size=1000)
            if keyed:
                stored = {
                    (str(c.account_id), c.idempotency_key): c
                    for c in Command.objects.filter(
                        account_id__in={c.account_id for c in keyed},
                        idempotency_key__in={c.idempotency_key for c in keyed},
                    )
                }
                result = [
                    stored.get((str(c.account_id), c.idempotency_key), c) if c.idempotency_key else c for c in built
                ]
            else:
                result = built
            built_ids = {c.id for c in built}
            commands_cache_after_commit([c for c in result if c.id in built_ids])
    except IntegrityError as exc:
        raise ServiceError("a trading account in the batch does not exist", code="invalid_account") from exc
    return result


# --- cancel / retry ---


def command_cancel(*, command_id, by=None) -> Command:
    """Cancel an open command. A command already delivered may still run on the terminal; its result then wins."""
    with transaction.atomic():
        command = Command.objects.select_for_update().filter(id=command_id).first()
        if command is None:
            raise ServiceError("no such command", code="not_found", status_code=404)
        if command.status not in OPEN_STATUSES:
            raise Conflict(f"a {command.status} command cannot be cancelled")
        command.status = CommandStatus.CANCELLED
        command.finished_at = timezone.now()
        command.message = f"cancelled by {by}" if by else "cancelled"
        command.save(update_fields=["status", "finished_at", "message"])
        account_id = command.account_id
        transaction.on_commit(lambda: store.queue_remove(account_id, [command.id]))
    return command


def command_retry(*, command_id, by=None) -> Command:
    """Queue a fresh copy of a failed/expired/cancelled command.

    It gets a new id on purpose: an EA that saw the old id would answer with the old outcome instead of running it.
    """
    original = Command.objects.filter(id=command_id).first()
    if original is None:
        raise ServiceError("no such command", code="not_found", status_code=404)
    if original.status not in (CommandStatus.FAILED, CommandStatus.EXPIRED, CommandStatus.CANCELLED):
        raise Conflict(f"a {original.status} command cannot be retried")
    now = timezone.now()
    expires_at = None
    if original.expires_at is not None:
        expires_at = now + max(original.expires_at - original.created_at, timedelta(seconds=1))
    with transaction.atomic():
        command = Command.objects.create(
            account_id=original.account_id,
            kind=original.kind,
            params=original.params,
            origin=original.origin,
            created_at=now,
            expires_at=expires_at,
            origin_ref=original.origin_ref,
            intent=original.intent,
            retry_of=original,
            created_by=by if getattr(by, "pk", None) else None,
        )
        commands_cache_after_commit([command])
    return command


# --- delivery ---


def _open_payloads_from_db(account_id) -> list[dict]:
    rows = Command.objects.filter(account_id=account_id, status__in=OPEN_STATUSES).order_by("created_at")[:500]
    return [payload_of(c) for c in rows]


def queues_reconcile(account_ids: Iterable) -> int:
    """Make the Redis queues of these accounts equal to their open commands in PostgreSQL, with one query (the EA
    fast path batches the accounts whose periodic queue check fell due). Polls of accounts that have commands are
    woken. Returns the number of open commands found."""
    ids = [str(a) for a in account_ids]
    found: dict[str, list[dict]] = {account_id: [] for account_id in ids}
    for command in Command.objects.filter(account_id__in=ids, status__in=OPEN_STATUSES).order_by("created_at"):
        payloads = found[str(command.account_id)]
        if len(payloads) < 500:
            payloads.append(payload_of(command))
    store.queues_replace(found)
    r = store.client()
    waking = [account_id for account_id, payloads in found.items() if payloads]
    if r is not None and waking:
        pipe = r.pipeline(transaction=False)
        for account_id in waking:
            pipe.publish(store.wake_channel(), account_id)
        pipe.execute()
    return sum(len(p) for p in found.values())


def queue_fetch(pipe, account_id) -> None:
    """Queue the two reads ``commands_deliver`` needs on a caller's pipeline (saves a round trip)."""
    pipe.set(store.reconcile_key(account_id), "1", nx=True, ex=settings.EA_QUEUE_RECONCILE_SECONDS)
    pipe.hgetall(store.queue_key(account_id))


def commands_deliver(*, account_id, limit: int = 50, now: float | None = None, prefetched=None) -> list[dict]:
    """The commands to hand to the EA now: open, not expired, not delivered within the redelivery window.

    ``prefetched`` is the (reconcile, queue) pair a caller already read with ``queue_fetch``.
    """
    now = store.now() if now is None else now
    r = store.client()
    if r is None:
        return _deliver(account_id, {p["id"]: p for p in _open_payloads_from_db(account_id)}, {}, limit, now)
    if prefetched is None:
        pipe = r.pipeline(transaction=False)
        queue_fetch(pipe, account_id)
        prefetched = pipe.execute()
    reconcile, raw = prefetched
    if reconcile:
        payloads = _open_payloads_from_db(account_id)
        store.queue_replace(account_id, payloads)
        queued = {p["id"]: p for p in payloads}
    else:
        if not raw:
            return []
        queued = {cid: json.loads(text) for cid, text in raw.items()}
    if not queued:
        return []
    delivered = r.hgetall(store.delivered_key(account_id))
    return _deliver(account_id, queued, delivered, limit, now)


def _deliver(account_id, queued: dict[str, dict], delivered: dict, limit: int, now: float) -> list[dict]:
    redeliver_after = settings.EA_REDELIVER_SECONDS
    expired, due = [], []
    for cid, payload in sorted(queued.items(), key=lambda kv: kv[1]["created_at"]):
        if payload.get("expires_at") is not None and payload["expires_at"] <= now:
            expired.append(cid)
        elif cid not in delivered or now - float(delivered[cid]) >= redeliver_after:
            due.append(cid)
    if expired:
        commands_expire(account_id=account_id, command_ids=expired)
    if not due:
        return []
    due = due[:limit]
    marked = sql.commands_mark_delivered(due, timezone.now())
    gone = [cid for cid in due if cid not in marked]
    if gone:  # finished or cancelled in the database meanwhile: drop from the cache
        store.queue_remove(account_id, gone)
    due = [cid for cid in due if cid in marked]
    if not due:
        return []
    r = store.client()
    if r is not None:
        r.hset(store.delivered_key(account_id), mapping=dict.fromkeys(due, str(now)))
    return [queued[cid] for cid in due]


def commands_expire(*, account_id, command_ids: list[str]) -> int:
    """Mark open commands that passed their expiry (a copy that would arrive too late is not executed)."""
    count = Command.objects.filter(id__in=command_ids, account_id=account_id, status__in=OPEN_STATUSES).update(
        status=CommandStatus.EXPIRED, finished_at=timezone.now(), message="expired before the EA executed it"
    )
    store.queue_remove(account_id, command_ids)
    return count


def commands_expire_due(*, now: datetime | None = None) -> int:
    """Expire every open command past its expiry (periodic sweep; delivery also expires lazily)."""
    now = now or timezone.now()
    rows = list(
        Command.objects.filter(status__in=OPEN_STATUSES, expires_at__lte=now).values_list("account_id", "id")[:5000]
    )
    by_account: dict = defaultdict(list)
    for account_id, cid in rows:
        by_account[account_id].append(str(cid))
    return sum(commands_expire(account_id=a, command_ids=ids) for a, ids in by_account.items())


# --- results ---


@dataclass(frozen=True)
class ResultOutcome:
    id: str
    outcome: str  # applied | duplicate | unknown


def command_results_apply(*, account_id, results: Iterable[CommandResult]) -> list[ResultOutcome]:
    """Record the EA's outcomes. Unknown ids and other accounts' ids are ignored; repeats are no-ops."""
    outcomes: list[ResultOutcome] = []
    applied: list[Command] = []
    finished_at = timezone.now()
    for res in results:
        status = CommandStatus.EXECUTED if res.status == "executed" else CommandStatus.FAILED
        mine = Command.objects.filter(id=res.id, account_id=account_id)
        if connection.vendor == "postgresql":
            stored = sql.command_result_write(
                res.id, account_id, status=status, retcode=res.retcode, message=res.message, result=res.result,
                finished_at=finished_at,
            )  # fmt: skip
        else:  # the same conditional UPDATE through the ORM, then a read of the row
            note = Concat(Value(" (after server marked it "), F("status"), Value(")"), output_field=CharField())
            written = mine.exclude(status__in=(CommandStatus.EXECUTED, CommandStatus.FAILED)).update(
                status=status,
                retcode=res.retcode,
                message=Left(
                    Concat(Value(res.message), Case(When(status__in=OPEN_STATUSES, then=Value("")), default=note)), 255
                ),
                result=res.result,
                finished_at=finished_at,
            )
            stored = mine.get() if written else None
        if stored is None:
            outcomes.append(ResultOutcome(str(res.id), "duplicate" if mine.exists() else "unknown"))
            continue
        applied.append(stored)
        outcomes.append(ResultOutcome(str(res.id), "applied"))
    if outcomes:
        store.queue_remove(account_id, [o.id for o in outcomes if o.outcome != "unknown"])
    for command in applied:
        events.command_result_stored(command)
    return outcomes
