"""Reads the hot path shares: each account's copy links, rules and mode, cached per process.

A heartbeat must not query the links it copies to. Every change to links, rules or copy modes bumps one
version number in the shared cache (Redis); each process keeps its snapshot until the number moves.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count

from accounts.models import TradingAccount

from .choices import AccountMode
from .models import AccountCopyState, CopyLink, Rule
from .sizing import AccountFigures

VERSION_KEY = "copytrading:config-version"
_local: dict[str, tuple[int, AccountConfig]] = {}
_lock = threading.Lock()


@dataclass
class AccountConfig:
    """What the heartbeat path needs of one account."""

    account_id: str
    links_out: list = field(default_factory=list)  # active CopyLinks where the account is the master
    incoming_links: int = 0  # active links where the account is the slave
    rules: list = field(default_factory=list)
    mode: str = AccountMode.NORMAL
    state: object | None = None  # AccountCopyState, when one exists
    # Links refused by the account or billing gate: (reason code, reason) by link id, and when it was checked
    # (time.monotonic); see copytrading.access.
    refusals: dict = field(default_factory=dict)
    refusals_checked_at: float | None = None

    @property
    def is_idle(self) -> bool:
        return not self.links_out and not self.incoming_links and not self.rules


VERSION_TTL = 0.5  # seconds a process trusts its last read of the version (another process's edit shows within it)
_version: list = [0, -1.0]  # [value, monotonic time read]


def config_version() -> int:
    """The shared version number, read from the cache at most every VERSION_TTL s per process.

    Heartbeats of thousands of accounts ask for it; one read per half second serves them all."""
    now = time.monotonic()
    if now - _version[1] >= VERSION_TTL:
        value = cache.get(VERSION_KEY)
        _version[0], _version[1] = (_fresh_version() if value is None else value), now
    return _version[0]


def _fresh_version() -> int:
    """A number for a missing version key (Redis flushed or restarted) that no process has cached yet.

    Starting again from 0 would let a process trust a snapshot it took under an old 0 (an account then without
    links stays "idle" and its trades are not copied). Microseconds since the epoch are above any number reached
    by bumps; ``add`` (SET NX) makes every process agree on one.
    """
    cache.add(VERSION_KEY, time.time_ns() // 1000, None)
    return cache.get(VERSION_KEY) or 0


def forget_config_version() -> None:
    _version[1] = -1.0


def forget_local_config() -> None:
    """Drop this process's snapshots (tests, whose cache is emptied between them, start from nothing)."""
    with _lock:
        _local.clear()
        _configured[0] = None
    forget_config_version()


def bump_config_version() -> None:
    """Invalidate every process's snapshot now and again after the transaction commits."""

    def bump() -> None:
        try:
            cache.incr(VERSION_KEY)
        except ValueError:  # missing: a fresh number is a change for every process
            _fresh_version()
        forget_config_version()  # this process sees its own edit at once

    bump()
    transaction.on_commit(bump)


_configured: list = [None, frozenset()]  # [version, ids of accounts with an active link or rule]


def configured_accounts(version: int) -> frozenset[str]:
    """Every account that is a master, a slave or has a rule, read once per version per process:
    the heartbeats of all other accounts need no query at all."""
    if _configured[0] != version:
        ids = set()
        for master_id, slave_id in CopyLink.objects.filter(active=True).values_list("master_id", "slave_id"):
            ids.update((str(master_id), str(slave_id)))
        ids.update(str(a) for a in Rule.objects.filter(active=True).values_list("account_id", flat=True))
        with _lock:
            _configured[0], _configured[1] = version, frozenset(ids)
    return _configured[1]


def account_config(account_id) -> AccountConfig:
    key = str(account_id)
    version = config_version()
    hit = _local.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    config = _load(key) if key in configured_accounts(version) else AccountConfig(account_id=key)
    with _lock:
        _local[key] = (version, config)
    return config


def account_config_in_memory(account_id) -> AccountConfig | None:
    """``account_config`` when this process can answer it with no I/O (its version read within VERSION_TTL and
    the account's snapshot taken under it), else None. The EA fast path asks it on the event loop."""
    if time.monotonic() - _version[1] >= VERSION_TTL:
        return None
    key = str(account_id)
    hit = _local.get(key)
    if hit is not None and hit[0] == _version[0]:
        return hit[1]
    return None


def _load(account_id: str) -> AccountConfig:
    links = list(
        CopyLink.objects.filter(master_id=account_id, active=True)
        .select_related("master", "slave", "slave__copy_state")
        .order_by("priority", "id")
    )
    if links:
        # Slaves fed by several masters need the priority check; the others skip its queries.
        shared = set(
            CopyLink.objects.filter(slave_id__in=[link.slave_id for link in links], active=True)
            .values("slave_id")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .values_list("slave_id", flat=True)
        )
        for link in links:
            link.slave_is_shared = link.slave_id in shared
            link.resolved_symbols = {}
    state = AccountCopyState.objects.filter(account_id=account_id).first()
    return AccountConfig(
        account_id=account_id,
        links_out=links,
        incoming_links=CopyLink.objects.filter(slave_id=account_id, active=True).count(),
        rules=list(Rule.objects.filter(account_id=account_id, active=True).order_by("id")),
        mode=state.mode if state else AccountMode.NORMAL,
        state=state,
    )


def slave_mode(link) -> str:
    try:
        return link.slave.copy_state.mode
    except Exception:  # RelatedObjectDoesNotExist: no state row means copying normally
        return AccountMode.NORMAL


def clear_local_cache() -> None:
    _local.clear()


# Ratio sizing needs each slave's balance/equity/free margin; seconds-old figures size a lot just as well.
FIGURES_TTL_SECONDS = 5.0
_figures: dict[str, tuple[float, AccountFigures]] = {}


def slave_figures(ids: list[str]) -> dict[str, AccountFigures]:
    """Balance, equity and free margin of each account, read at most every FIGURES_TTL_SECONDS per process."""
    now = time.monotonic()
    found = {i: hit[1] for i in ids if (hit := _figures.get(i)) is not None and hit[0] > now}
    missing = [i for i in ids if i not in found]
    if missing:
        rows = TradingAccount.objects.filter(pk__in=missing).values_list("pk", "balance", "equity", "margin_free")
        for pk, balance, equity, free in rows:
            figures = AccountFigures(balance, equity, free)
            found[str(pk)] = figures
            _figures[str(pk)] = (now + FIGURES_TTL_SECONDS, figures)
    return found


def clear_figures_cache() -> None:
    _figures.clear()
