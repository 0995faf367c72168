"""Write paths of the EA protocol: issue/rotate/revoke tokens, authenticate an EA, and process a heartbeat."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import TradingAccount
from config.errors import ServiceError
from mt5bridge import commands as cq
from mt5bridge import events
from mt5bridge.ea import store
from mt5bridge.ea.models import EAConnection, EAToken, connection_status
from mt5bridge.ea.persist import state_figures, state_persist
from mt5bridge.ea.protocol import PROTOCOL_VERSION, Heartbeat, decode_heartbeat
from mt5bridge.ea.state import (
    EAState,
    state_fingerprint,
    state_floating_figures,
    state_from_json,
    state_to_json,
)

logger = logging.getLogger(__name__)

TOKEN_CACHE_SECONDS = 300
BAD_TOKEN_CACHE_SECONDS = 10


@dataclass(frozen=True)
class EAClient:
    """The authenticated EA: which account it speaks for. Built from the token, never from the request body."""

    account_id: str
    login: int
    owner_id: int
    is_authenticated: bool = True  # DRF treats it as request.user
    is_ea_client: bool = True  # the permission matrix's "ea" capability (accounts.permissions)

    @property
    def pk(self) -> str:
        return self.account_id


# --- tokens ---


def token_hash(token: str) -> str:
    """SHA-256 of the canonical UUID text. A UUID4 carries 122 random bits, so a fast hash is enough:
    there is nothing to brute-force, and a leaked table does not reveal any token."""
    return hashlib.sha256(token.encode()).hexdigest()


def canonical_token(raw: str) -> str | None:
    try:
        return str(uuid.UUID(raw.strip()))
    except (ValueError, AttributeError):
        return None


def ea_token_issue(*, account: TradingAccount, by=None) -> str:
    """Create or rotate the account's EA token; return the plain token (shown once, never stored)."""
    token = str(uuid.uuid4())
    now = timezone.now()
    with transaction.atomic():
        existing = EAToken.objects.select_for_update().filter(account=account).first()
        old_hash = existing.token_hash if existing else None
        if existing:
            existing.token_hash = token_hash(token)
            existing.hint = token[:8]
            existing.rotated_at = now
            existing.revoked_at = None
            existing.save(update_fields=["token_hash", "hint", "rotated_at", "revoked_at"])
        else:
            EAToken.objects.create(account=account, token_hash=token_hash(token), hint=token[:8], created_at=now)
        if old_hash:
            # Now (so this process stops accepting it) and after commit (in case a racing request re-cached it).
            _forget_token(old_hash)
            transaction.on_commit(lambda: _forget_token(old_hash))
    logger.info("EA token %s for account %s by %s", "rotated" if old_hash else "issued", account.pk, by)
    return token


def ea_token_revoke(*, account: TradingAccount, by=None) -> EAToken:
    with transaction.atomic():
        token = EAToken.objects.select_for_update().filter(account=account).first()
        if token is None:
            raise ServiceError("this account has no EA token", code="not_found", status_code=404)
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
        old_hash = token.token_hash
        _forget_token(old_hash)
        transaction.on_commit(lambda: _forget_token(old_hash))
    logger.info("EA token revoked for account %s by %s", account.pk, by)
    return token


def _forget_token(hashed: str) -> None:
    r = store.client()
    if r is not None:
        r.delete(store.token_key(hashed))


def ea_tokens_forget_for_accounts(account_ids) -> None:
    """Drop the cached authentication of these accounts' EA tokens, so the next request of each is checked against
    the database again (an inactive or deleted account's token then gets 401 at once, not after TOKEN_CACHE_SECONDS).

    Deleting the Redis entry reaches every process: the ASGI fast path's per-process ``_known`` tokens are only a
    hint, and its beat script writes nothing unless the entry still maps to the account. Done now (this process
    stops accepting the tokens) and after commit (a request in between may have re-cached the rows as they were);
    the hashes are read now, so this works before a delete cascades to the tokens too."""
    ids = [str(pk) for pk in account_ids]
    if not ids:
        return
    hashes = list(EAToken.objects.filter(account_id__in=ids).values_list("token_hash", flat=True))
    if not hashes:
        return

    def forget() -> None:
        r = store.client()
        if r is not None:
            r.delete(*(store.token_key(h) for h in hashes))

    forget()
    transaction.on_commit(forget)


def ea_authenticate(raw_token: str) -> EAClient | None:
    """The EA client a token belongs to, or None (wrong, revoked, or inactive account). Cached in Redis."""
    token = canonical_token(raw_token)
    if token is None:
        return None
    hashed = token_hash(token)
    r = store.client()
    if r is not None:
        cached = r.get(store.token_key(hashed))
        if cached == "-":
            return None
        if cached:
            account_id, login, owner_id = cached.split("|")
            return EAClient(account_id, int(login), int(owner_id))
    row = (
        EAToken.objects.filter(token_hash=hashed, revoked_at__isnull=True, account__is_active=True)
        .values_list("account_id", "account__login", "account__owner_id")
        .first()
    )
    if r is not None:
        if row:
            r.set(store.token_key(hashed), f"{row[0]}|{row[1]}|{row[2]}", ex=TOKEN_CACHE_SECONDS)
        else:
            r.set(store.token_key(hashed), "-", ex=BAD_TOKEN_CACHE_SECONDS)
    if row is None:
        return None
    return EAClient(str(row[0]), int(row[1]), int(row[2]))


# --- throttling: atomic Redis counters (DRF's cache throttle is not atomic) ---


def throttle_allows(key: str, limit: int, window: int) -> bool:
    r = store.client()
    if r is None:
        return True
    pipe = r.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, window + 1)
    count, _ = pipe.execute()
    return count <= limit


def ea_throttle_allows(client: EAClient) -> bool:
    window = int(store.now())
    return throttle_allows(store.throttle_key(client.account_id, window), settings.EA_THROTTLE_PER_SECOND, 1)


def bad_token_allows(ip: str) -> bool:
    window = int(store.now()) // 60
    return throttle_allows(store.bad_token_key(ip, window), settings.EA_BAD_TOKEN_PER_MINUTE, 60)


# --- heartbeat ---


def ea_gates_forget(owner_id=None) -> None:
    """Drop the cached billing gate answers of one owner's accounts, or of every account (owner_id None)."""
    r = store.client()
    if r is None:
        return
    key = store.gate_epoch_keys(owner_id)[0 if owner_id is None else 1]
    r.incr(key)
    if owner_id is not None:
        r.expire(key, 30 * 86400)


def _gate_cached(meta: dict, now: float, epoch: str) -> str | None:
    """The cached gate answer ("" = allowed, else the reason) when it is still good, else None."""
    gate = meta.get("gate")
    if gate is None or meta.get("gate_epoch") != epoch:
        return None
    if now - float(meta.get("gate_at", 0)) >= settings.EA_GATE_CACHE_SECONDS:
        return None
    return gate


def _access(client: EAClient, meta: dict, now: float, epoch: str) -> tuple[bool, str, bool]:
    """(allowed, reason, refreshed): the billing gate, cached per account until billing or the owner's accounts
    change (``epoch``) and at most EA_GATE_CACHE_SECONDS."""
    gate = _gate_cached(meta, now, epoch)
    if gate is not None:
        return gate == "", gate, False
    from entitlements.gates import ea_access

    account = TradingAccount.objects.filter(pk=client.account_id).first()
    if account is None or not account.is_active:
        return False, "the trading account is not active", True
    allowed, reason = ea_access(account)
    return bool(allowed), ("" if allowed else (reason or "access denied")), True


def heartbeat_process(*, client: EAClient, body: bytes, received_at: datetime | None = None) -> dict:
    """Store a heartbeat and answer it with the commands due. Raises ProtocolError (→ 400) before storing anything."""
    received_at = received_at or datetime.now(UTC)
    beat = decode_heartbeat(body, account_id=client.account_id, login=client.login, received_at=received_at)
    outcomes = cq.command_results_apply(account_id=client.account_id, results=beat.results) if beat.results else []
    fingerprint = state_fingerprint(beat.state)
    r = store.client()
    if r is not None:
        pipe = r.pipeline(transaction=False)
        pipe.set(store.state_key(client.account_id), state_to_json(beat.state), get=True, ex=86400)
        pipe.hgetall(store.meta_key(client.account_id))
        pipe.hset(store.meta_key(client.account_id), mapping={"seen": received_at.timestamp()})
        pipe.hincrby(store.meta_key(client.account_id), "beats", 1)
        cq.queue_fetch(pipe, client.account_id)
        for key in store.gate_epoch_keys(client.owner_id):
            pipe.get(key)
        previous_json, meta, _, beats, *queued, epoch_all, epoch_owner = pipe.execute()
        epoch = store.gate_epoch((epoch_all, epoch_owner))
    else:
        conn = EAConnection.objects.filter(account_id=client.account_id).first()
        meta = (
            {"fp": conn.state_fingerprint, "persisted": conn.persisted_at.timestamp()}
            if conn and conn.persisted_at
            else {}
        )
        previous_json = conn.state["json"] if conn and conn.state.get("json") else None
        beats = (conn.beats if conn else 0) + 1
        queued, epoch = None, ""
    return heartbeat_finish(client, beat, fingerprint, previous_json, meta, beats, queued, epoch, outcomes)


def heartbeat_finish(
    client: EAClient,
    beat: Heartbeat,
    fingerprint: str,
    previous_json: str | None,
    meta: dict,
    beats: int,
    queued,
    epoch: str,
    outcomes=(),
) -> dict:
    """Everything after the state swap in Redis (``previous_json``/``meta``/``queued``/``epoch`` are what it read): the
    billing gate, the bridge listeners, the PostgreSQL write on change or cadence, the live push, the commands due."""
    r = store.client()
    state = beat.state
    now = state.received_at.timestamp()
    previous = state_from_json(previous_json) if previous_json else None
    changed = meta.get("fp") != fingerprint
    due = persist_due(meta, now)
    allowed, reason, gate_refreshed = _access(client, meta, now, epoch)
    # Listeners (copy trading, rules) hear only accepted beats: a refused master is never copied. They run before
    # the state is written to PostgreSQL: they need only the frozen states, and a master's copies should not wait
    # for a dozen writes (nor be lost if one fails after the Redis swap above).
    if allowed:
        events.ea_state_changed(previous, state)
    if changed or due or r is None:
        state_persist(client, beat, state, fingerprint, changed=changed, beats=beats, denied=reason)
    if r is not None and (changed or due or gate_refreshed):
        update = {"fp": fingerprint}
        if changed or due:
            update["persisted"] = now
        if gate_refreshed:
            update.update(gate=reason, gate_at=now, gate_epoch=epoch)
        r.hset(store.meta_key(client.account_id), mapping=update)
    if changed or (previous is not None and (previous.equity != state.equity or previous.margin != state.margin)):
        _publish(client, state, meta, now, force=changed)
    commands = (
        cq.commands_deliver(account_id=client.account_id, limit=beat.max_commands, now=now, prefetched=queued)
        if allowed
        else []
    )
    reply = poll_reply(allowed=allowed, reason=reason, commands=commands)
    if outcomes:
        reply["acks"] = [{"id": o.id, "outcome": o.outcome} for o in outcomes]
    return reply


def persist_due(meta: dict, now: float) -> bool:
    """Whether the state's cadence write to PostgreSQL (every EA_PERSIST_SECONDS) is due."""
    return now - float(meta.get("persisted", 0)) >= settings.EA_PERSIST_SECONDS


def heartbeat_quiet(
    client: EAClient,
    beat: Heartbeat,
    fingerprint: str,
    previous_json: str | None,
    meta: dict,
    queued,
    watched: bool,
    epoch: str,
    *,
    persist_deferred: bool = False,
) -> tuple[bool, str] | None:
    """The gate answer (allowed, reason) when ``heartbeat_finish`` would do nothing but answer "no commands",
    known without I/O: nothing changed, no write due, the gate answer cached, no command queued or queue check due,
    every bridge listener idle for the account, no live push due (and, unless the caller writes it later with
    ``states_persist``, no cadence write due). None when ``heartbeat_finish`` has work to do."""
    state = beat.state
    now = state.received_at.timestamp()
    if previous_json is None or meta.get("fp") != fingerprint or beat.results:
        return None
    if not persist_deferred and persist_due(meta, now):
        return None
    gate = _gate_cached(meta, now, epoch)
    if gate is None:
        return None
    if gate == "" and (queued[0] or queued[1] or not events.all_idle(client.account_id)):
        return None
    if watched and now - float(meta.get("pub", 0)) >= settings.EA_LIVE_FLOAT_SECONDS:
        if state_floating_figures(previous_json) != (state.equity, state.margin):
            return None
    return gate == "", gate


def _publish(client: EAClient, state: EAState, meta: dict, now: float, *, force: bool) -> None:
    """Live dashboards: on a change at once; when only floating figures moved, at most every EA_LIVE_FLOAT_SECONDS.
    The payload is built from the heartbeat itself, so a push costs no database read."""
    if not force and now - float(meta.get("pub", 0)) < settings.EA_LIVE_FLOAT_SECONDS:
        return
    r = store.client()
    if r is not None:
        r.hset(store.meta_key(client.account_id), "pub", now)
    from accounts.live import figures_payload, publish_account_update

    positions = [
        {
            "ticket": p.ticket,
            "symbol": p.symbol,
            "side": "buy" if p.type == 0 else "sell",
            "volume": str(p.volume.normalize()),
            "price_open": str(p.price_open.normalize()),
            "price_current": None,  # the EA reports P/L, not the current price
            "swap": None,
            "profit": str(p.profit),
        }
        for p in sorted(state.positions, key=lambda p: p.time)
    ]
    publish_account_update(client.account_id, figures_payload(client.account_id, state_figures(state), positions))


# --- reads shared by the API, the admin and the copy engine ---


def ea_state_latest(account_id) -> EAState | None:
    """The newest reported state (Redis first, then the last persisted one)."""
    r = store.client()
    if r is not None:
        text = r.get(store.state_key(account_id))
        if text:
            return state_from_json(text)
    conn = EAConnection.objects.filter(account_id=account_id).first()
    if conn and conn.state.get("json"):
        return state_from_json(conn.state["json"])
    return None


def ea_connection_status(account_id) -> str:
    """online / stale / offline from the last heartbeat (Redis first)."""
    r = store.client()
    if r is not None:
        seen = r.hget(store.meta_key(account_id), "seen")
        if seen:
            return connection_status(datetime.fromtimestamp(float(seen), tz=UTC))
    conn = EAConnection.objects.filter(account_id=account_id).only("last_seen_at").first()
    return connection_status(conn.last_seen_at if conn else None)


# --- polling ---


def ea_poll_access(client: EAClient) -> tuple[bool, str]:
    """The billing gate for a command poll (same cache as the heartbeat's)."""
    r = store.client()
    now = store.now()
    meta, epoch = {}, ""
    if r is not None:
        pipe = r.pipeline(transaction=False)
        pipe.hgetall(store.meta_key(client.account_id))
        for key in store.gate_epoch_keys(client.owner_id):
            pipe.get(key)
        meta, *epochs = pipe.execute()
        epoch = store.gate_epoch(epochs)
    allowed, reason, refreshed = _access(client, meta, now, epoch)
    if refreshed and r is not None:
        r.hset(store.meta_key(client.account_id), mapping={"gate": reason, "gate_at": now, "gate_epoch": epoch})
    return allowed, reason


def poll_reply(*, allowed: bool, reason: str, commands: list[dict]) -> dict:
    """The answer to ``GET /api/ea/commands`` (the DRF view and the ASGI fast path send the same body); a heartbeat's
    reply is the same with the acks of the results it carried."""
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


def ack_reply(outcomes) -> dict:
    """The answer to ``POST /api/ea/command-ack`` (DRF view and fast path alike)."""
    return {"acks": [{"id": o.id, "outcome": o.outcome} for o in outcomes]}


def commands_wait(*, client: EAClient, seconds: float, limit: int) -> list[dict]:
    """Long poll in a thread (the DRF view): wait for a command for this account or the end of ``seconds``.

    The one wake-up mechanism of both edges: ``store.wake_channel``, published when commands are cached; this thread
    reads it through a subscription of its own (the ASGI fast path shares one per process, ``wakeups``). Without
    Redis the queue is read every 0.25 s."""
    deadline = time.monotonic() + seconds
    r = store.client()
    if r is None:
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.25))
            commands = cq.commands_deliver(account_id=client.account_id, limit=limit)
            if commands:
                return commands
        return []
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(store.wake_channel())
        # Subscribed before this look: a command cached from now on wakes the wait.
        commands = cq.commands_deliver(account_id=client.account_id, limit=limit)
        while not commands:
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            message = pubsub.get_message(timeout=left)
            if message is not None and message.get("data") == client.account_id:
                commands = cq.commands_deliver(account_id=client.account_id, limit=limit)
        return commands
    finally:
        pubsub.close()
