"""Write paths of the EA protocol: issue/rotate/revoke tokens, authenticate an EA, and process a heartbeat."""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import TradingAccount
from config.errors import ServiceError
from mt5bridge.ea import pipeline, store
from mt5bridge.ea.models import EAConnection, EAToken, connection_status
from mt5bridge.ea.state import EAState, state_from_json

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


# --- the gate's cached answers ---


def ea_gates_forget(owner_id=None) -> None:
    """Drop the cached billing gate answers of one owner's accounts, or of every account (owner_id None)."""
    r = store.client()
    if r is None:
        return
    key = store.gate_epoch_keys(owner_id)[0 if owner_id is None else 1]
    r.incr(key)
    if owner_id is not None:
        r.expire(key, 30 * 86400)


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
    """The billing gate for a command poll (the heartbeat's cached answer, looked up and cached when old)."""
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
    gate = pipeline.cached_gate(meta, now, epoch, pipeline.Timing.from_settings())
    if gate is None:
        gate = pipeline.gate_look_up(client.account_id)
        if r is not None:
            r.hset(store.meta_key(client.account_id), mapping={"gate": gate, "gate_at": now, "gate_epoch": epoch})
    return gate == "", gate


def ack_reply(outcomes) -> dict:
    """The answer to ``POST /api/ea/command-ack`` (both edges)."""
    return {"acks": [{"id": o.id, "outcome": o.outcome} for o in outcomes]}
