"""The heartbeat pipeline: one way from a received beat to its reply, for every edge.

A beat goes through three steps, whichever edge received it (the DRF view in ``api``, or the ASGI edge in
``fast``, which runs the same steps in ``edge``):

1. **Swap.** One Redis script (``store.BEAT_SCRIPT``, the one writer of the live state) stores the new state and
   reads what the plan needs: the previous state, the account's meta (fingerprint, last cadence write, cached gate
   answer, last live push), the beat count, the command queue and its periodic check, whether a dashboard watches,
   the gate epoch. The result is a ``BeatContext``. Without Redis (the embedded default) the context is read from
   the database instead.
2. **Plan.** ``plan_beat(beat, fingerprint, context, timing)`` is a pure function: it returns a ``BeatPlan``, the
   effects this beat calls for. A steady beat (nothing changed, nothing due, nothing queued, every listener idle,
   the gate answer cached) gets a plan with no effect: it is *quiet*, and its reply is known at once.
3. **Run.** ``run_plan`` does the effects in one order (gate look-up and re-plan, command results, listeners,
   PostgreSQL write, live push, meta, commands due). An edge may hand the two periodic effects (the cadence write
   of an unchanged state and the queue check of an empty queue) to a batch instead (``plan.deferrable``).

A new per-beat step is one field of ``BeatPlan``, one rule in ``plan_beat`` and one line in ``run_plan``: steady
beats cannot skip it, because "steady" is only the name of a plan in which every rule said no.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from django.conf import settings

from accounts.models import TradingAccount
from entitlements import gates
from mt5bridge import commands as cq
from mt5bridge import events
from mt5bridge.ea import persist, store
from mt5bridge.ea.models import EAConnection
from mt5bridge.ea.protocol import PROTOCOL_VERSION, Heartbeat, decode_heartbeat
from mt5bridge.ea.state import state_fingerprint, state_floating_figures, state_from_json, state_to_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    """The cadences a plan is made under (settings, read once per beat)."""

    persist_seconds: float
    live_float_seconds: float
    gate_cache_seconds: float

    @classmethod
    def from_settings(cls) -> Timing:
        return cls(settings.EA_PERSIST_SECONDS, settings.EA_LIVE_FLOAT_SECONDS, settings.EA_GATE_CACHE_SECONDS)


@dataclass(frozen=True)
class BeatContext:
    """What the swap read for one beat (or, without Redis, the database)."""

    previous_json: str | None
    meta: dict
    beats: int
    epoch: str = ""
    queue_check: bool = False  # the periodic Redis-vs-PostgreSQL check of the queue fell due
    queued: dict | None = None  # the cached commands (id → payload JSON); None: not cached, read the database
    watched: bool = True  # a live dashboard shows the account
    listeners_idle: bool = False  # every bridge listener said it has nothing to do for the account
    durable_only: bool = False  # no Redis: the database holds the only copy of the state
    gate: str | None = None  # a gate answer just looked up ("" = allowed, else the reason); None: use the cached one


@dataclass(frozen=True)
class BeatPlan:
    """The effects a beat calls for. ``allowed``/``reason`` are the gate's answer (what the reply says), not effects."""

    allowed: bool = True
    reason: str = ""
    look_up_gate: bool = False  # no gate answer holds (none cached, or billing changed since): ask, then plan again
    refresh_gate: bool = False  # the cached answer holds but is old: use it, and ask the gate again beside the beat
    apply_results: bool = False  # the beat carried command results
    notify: bool = False  # the bridge listeners (copy trading, rules) hear the state
    persist: str = ""  # "" | "cadence" (figures, connection row) | "change" (and positions, orders, a snapshot)
    publish: bool = False  # push the figures to live dashboards
    deliver: bool = False  # commands are queued (or not cached): hand out the due ones
    check_queue: bool = False  # the periodic queue check
    remember: dict = field(default_factory=dict)  # meta fields to store (the gate answer, the last push)

    @property
    def effects(self) -> tuple[str, ...]:
        flags = (
            "look_up_gate",
            "refresh_gate",
            "apply_results",
            "notify",
            "persist",
            "publish",
            "deliver",
            "check_queue",
            "remember",
        )
        return tuple(name for name in flags if getattr(self, name))

    @property
    def quiet(self) -> bool:
        """No effect: the reply ("no commands") is all there is to do."""
        return not self.effects

    @property
    def deferrable(self) -> bool:
        """Only periodic work that may be batched with other beats' (a cadence write, an empty queue's check, the
        gate's periodic refresh)."""
        return set(self.effects) <= {"check_queue", "persist", "refresh_gate"} and self.persist != "change"


def cached_gate(meta: dict, now: float, epoch: str, timing: Timing, *, aged: bool = False) -> str | None:
    """The cached gate answer ("" = allowed, else the reason) while it holds: computed under the same gate epoch
    (nothing in billing or the owner's accounts changed since: every such change bumps the epoch) and, unless
    ``aged``, less than ``gate_cache_seconds`` ago; else None."""
    gate = meta.get("gate")
    if gate is None or meta.get("gate_epoch") != epoch:
        return None
    if not aged and gate_aged(meta, now, timing):
        return None
    return gate


def gate_aged(meta: dict, now: float, timing: Timing) -> bool:
    """Whether the cached gate answer is older than ``gate_cache_seconds`` (the safety net behind the epoch)."""
    return now - float(meta.get("gate_at", 0)) >= timing.gate_cache_seconds


# An unchanged state is written again up to this fraction of EA_PERSIST_SECONDS early (``cadence_seconds``).
CADENCE_SPREAD = 0.25


def cadence_seconds(account_id: str, persisted: float, timing: Timing) -> float:
    """How long after its last write an unchanged state is written again: EA_PERSIST_SECONDS less up to a quarter,
    a fraction drawn from the account and the time of that write, so the same for every beat until the next write
    (the plan stays a pure function). Accounts that connected together (a server restart, a benchmark's start) would
    otherwise write all at once every interval, a burst of thousands of rows that showed in the heartbeat's p99
    (docs/benchmarks-ea.md); with the draw their writes spread out. No state waits longer than EA_PERSIST_SECONDS."""
    draw = zlib.crc32(f"{account_id}:{persisted:.3f}".encode()) / 0xFFFFFFFF
    return timing.persist_seconds * (1 - CADENCE_SPREAD * draw)


def plan_beat(beat: Heartbeat, fingerprint: str, ctx: BeatContext, timing: Timing) -> BeatPlan:
    """The effects of one beat, from the beat and its context alone (no I/O)."""
    state = beat.state
    now = state.received_at.timestamp()
    # An old answer under the same epoch still holds (any change to billing or the owner's accounts bumps the
    # epoch), so the beat uses it and the refresh happens beside it, not in its way.
    gate = ctx.gate if ctx.gate is not None else cached_gate(ctx.meta, now, ctx.epoch, timing, aged=True)
    if gate is None:
        return BeatPlan(look_up_gate=True)
    refresh_gate = ctx.gate is None and gate_aged(ctx.meta, now, timing)
    allowed = gate == ""
    first = ctx.previous_json is None
    changed = ctx.meta.get("fp") != fingerprint
    persisted = float(ctx.meta.get("persisted", 0))
    due = ctx.durable_only or now - persisted >= cadence_seconds(state.account_id, persisted, timing)
    # Only to a watched account (the swap read whether a dashboard shows it): the push then skips its own check.
    publish = changed and ctx.watched
    previous = ctx.previous_json
    if not publish and previous and ctx.watched and now - float(ctx.meta.get("pub", 0)) >= timing.live_float_seconds:
        publish = state_floating_figures(previous) != (state.equity, state.margin)
    remember: dict = {}
    if ctx.gate is not None:
        remember.update(gate=gate, gate_at=now, gate_epoch=ctx.epoch)
    if publish:
        remember["pub"] = now
    return BeatPlan(
        allowed=allowed,
        reason=gate,
        refresh_gate=refresh_gate,
        apply_results=bool(beat.results),
        # Listeners hear only accepted beats: a refused master is never copied.
        notify=allowed and (first or changed or not ctx.listeners_idle),
        persist="change" if changed else ("cadence" if due else ""),
        publish=publish,
        deliver=allowed and (ctx.queued is None or bool(ctx.queued)),
        check_queue=allowed and ctx.queue_check,
        remember=remember,
    )


# --- running a plan (a worker thread: the database may be read and written) ---


def gate_look_up(account_id: str) -> str:
    """The billing gate's answer for the account now: "" when its EA may trade, else the reason."""
    account = TradingAccount.objects.filter(pk=account_id).first()
    if account is None or not account.is_active:
        return "the trading account is not active"
    allowed, reason = gates.ea_access(account)
    return "" if allowed else (reason or "access denied")


def gates_look_up(account_ids: list[str]) -> dict[str, str]:
    """``gate_look_up`` of many accounts in a few queries (one for the accounts, one for their owners' limits)."""
    accounts = list(TradingAccount.objects.filter(pk__in=account_ids, is_active=True))
    answers = dict.fromkeys(account_ids, "the trading account is not active")
    for account, (allowed, reason) in zip(accounts, gates.ea_access_many(accounts), strict=True):
        answers[str(account.pk)] = "" if allowed else (reason or "access denied")
    return answers


def gates_refresh(clients) -> int:
    """The periodic refresh of cached gate answers (an edge's batch of ``refresh_gate`` effects): each client's
    answer looked up again and cached under the epoch read before the look-up (a change in between bumps the epoch,
    so the stored answer is then not used). Returns how many were refreshed."""
    r = store.client()
    if r is None or not clients:
        return 0
    pipe = r.pipeline(transaction=False)
    for client in clients:
        for key in store.gate_epoch_keys(client.owner_id):
            pipe.get(key)
    values = pipe.execute()
    now = store.now()
    answers = gates_look_up([client.account_id for client in clients])
    pipe = r.pipeline(transaction=False)
    for i, client in enumerate(clients):
        epoch = store.gate_epoch(values[2 * i : 2 * i + 2])
        update = {"gate": answers[client.account_id], "gate_at": now, "gate_epoch": epoch}
        pipe.hset(store.meta_key(client.account_id), mapping=update)
    pipe.execute()
    return len(clients)


def run_plan(client, beat: Heartbeat, fingerprint: str, ctx: BeatContext, plan: BeatPlan) -> dict:
    """Do a plan's effects, in this order, and return the reply.

    Listeners run before the PostgreSQL write: they need only the two states, and a master's copies should not wait
    for the write (nor be lost if it fails after the swap). The meta is stored after the write, so a failed write is
    due again on the next beat."""
    account_id = client.account_id
    state = beat.state
    try:
        if plan.look_up_gate or plan.refresh_gate:
            ctx = replace(ctx, gate=gate_look_up(account_id))
            plan = plan_beat(beat, fingerprint, ctx, Timing.from_settings())
        outcomes = cq.command_results_apply(account_id=account_id, results=beat.results) if plan.apply_results else []
        if plan.notify:
            # Without a previous state in Redis (a first beat, or Redis restarted empty) the last one stored in
            # PostgreSQL is the previous: a position opened meanwhile is then a change, not something already there.
            previous = ctx.previous_json or (None if ctx.durable_only else _stored_state_json(account_id))
            if not events.ea_state_changed(state_from_json(previous) if previous else None, state):
                _put_back(account_id, state, ctx)
    except Exception:
        _put_back(account_id, state, ctx)  # nothing heard this beat: the next one carries the same change
        raise
    if plan.persist:
        persist.states_write(
            [persist.StateWrite(client, beat, fingerprint, ctx.beats, plan.reason, changed=plan.persist == "change")]
        )
    if plan.publish:
        persist.state_publish(account_id, state)
    r = store.client()
    if plan.remember and r is not None:
        r.hset(store.meta_key(account_id), mapping=plan.remember)
    commands = []
    if plan.deliver or plan.check_queue:
        prefetched = None if ctx.queued is None else (plan.check_queue, ctx.queued)
        commands = cq.commands_deliver(
            account_id=account_id, limit=beat.max_commands, now=state.received_at.timestamp(), prefetched=prefetched
        )
    reply = poll_reply(allowed=plan.allowed, reason=plan.reason, commands=commands)
    if outcomes:
        reply["acks"] = [{"id": o.id, "outcome": o.outcome} for o in outcomes]
    return reply


def _stored_state_json(account_id: str) -> str | None:
    conn = EAConnection.objects.filter(account__pk=account_id).only("state").first()
    return (conn.state.get("json") or None) if conn else None


def _put_back(account_id: str, state, ctx: BeatContext) -> None:
    """The swap undone, so that the next beat carries this beat's change again (listeners are safe to repeat)."""
    if ctx.durable_only:
        return  # without Redis nothing was swapped: the state is written only by this beat's own write, not yet done
    try:
        store.state_put_back(account_id, state_to_json(state), ctx.previous_json)
    except Exception:
        logger.warning("could not put back the state of account %s; its change may be missed", account_id)


def _forget_swap(account_id: str) -> None:
    try:
        store.state_forget(account_id)
    except Exception:
        logger.warning("could not drop the live state of account %s after a failed swap", account_id)


def poll_reply(*, allowed: bool, reason: str, commands: list[dict]) -> dict:
    """The reply to a heartbeat or a command poll (every edge sends this body); a heartbeat's reply adds the acks of
    the results it carried."""
    reply = {
        "v": PROTOCOL_VERSION,
        "status": "ok" if allowed else "denied",
        "server_time": store.now(),
        "next_beat_ms": settings.EA_BEAT_MS,
        "commands": commands,
    }
    if not allowed:
        reply["reason"] = reason
    return reply


# --- the context ---


def context_of(account_id: str, swapped: dict) -> BeatContext:
    """The context of a beat from what ``store.beat_swap``/``beat_swap_sync`` read."""
    return BeatContext(
        previous_json=swapped["previous"],
        meta=swapped["meta"],
        beats=swapped["beats"],
        epoch=swapped["epoch"],
        queue_check=swapped["check"],
        queued=swapped["queued"],
        watched=swapped["watched"],
        listeners_idle=events.all_idle(account_id),
    )


def _context_from_database(account_id: str) -> BeatContext:
    conn = EAConnection.objects.filter(account__pk=account_id).first()
    if conn is None:
        return BeatContext(previous_json=None, meta={}, beats=1, durable_only=True)
    meta = {"fp": conn.state_fingerprint, "persisted": conn.persisted_at.timestamp()} if conn.persisted_at else {}
    return BeatContext(
        previous_json=conn.state.get("json") or None,
        meta=meta,
        beats=conn.beats + 1,
        durable_only=True,
        listeners_idle=events.all_idle(account_id),
    )


def heartbeat_process(*, client, body: bytes, received_at: datetime | None = None) -> dict:
    """Decode, swap, plan and run one beat of a client just authenticated and counted, in this thread; return the
    reply. Raises ProtocolError (→ 400) before anything is stored."""
    received_at = received_at or datetime.now(UTC)
    beat = decode_heartbeat(body, account_id=client.account_id, login=client.login, received_at=received_at)
    fingerprint = state_fingerprint(beat.state)
    if store.client() is None:
        ctx = _context_from_database(client.account_id)
    else:
        try:
            _, swapped = store.beat_swap_sync(**swap_call(client, beat, "", ""))  # no token check, no throttle
        except Exception:
            _forget_swap(client.account_id)
            raise
        assert swapped is not None  # neither a token check nor a throttle can refuse it
        ctx = context_of(client.account_id, swapped)
    return run_plan(client, beat, fingerprint, ctx, plan_beat(beat, fingerprint, ctx, Timing.from_settings()))


def swap_call(client, beat: Heartbeat, token_hash: str, expected: str) -> dict:
    """The keywords of ``store.beat_swap``/``beat_swap_sync`` for this beat (the throttle was counted earlier)."""
    return {
        "token_hash": token_hash,
        "expected": expected,
        "account_id": client.account_id,
        "owner_id": client.owner_id,
        "state_json": state_to_json(beat.state),
        "at": beat.state.received_at.timestamp(),
        "throttle": 0,
    }
