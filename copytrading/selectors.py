"""Reads the hot path shares: each account's copy links, rules and mode, cached per process.

A heartbeat must not query the links it copies to. Every change to links, rules or copy modes bumps one
version number in the shared cache (Redis); each process keeps its snapshots (memos keyed by that number, see
config.caches) until the number moves.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count

from accounts.models import TradingAccount
from config.caches import Memo

from .choices import AccountMode
from .models import AccountCopyState, CopyLink, Rule
from .sizing import AccountFigures

VERSION_KEY = "copytrading:config-version"

logger = logging.getLogger(__name__)


@dataclass
class AccountConfig:
    """What the heartbeat path needs of one account."""

    account_id: str
    links_out: list = field(default_factory=list)  # active CopyLinks where the account is the master
    incoming_links: int = 0  # active links where the account is the slave
    guarded_links: list = field(default_factory=list)  # those of them with an equity stop (copytrading.equity_stops)
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

# The version as this process read it, keyed by the VERSION_TTL-long slice of time it was read in.
VERSIONS: Memo[int] = Memo("copytrading.config_version", size=2)
# Each account's snapshot, keyed by (account id, version): a bump makes every key new.
CONFIGS: Memo[AccountConfig] = Memo("copytrading.account_configs", size=50_000)
# The ids of the accounts with an active link or rule, keyed by version.
CONFIGURED: Memo[frozenset[str]] = Memo("copytrading.configured_accounts", size=2)


def _time_slice(seconds: float) -> int:
    """The number of the ``seconds``-long slice of monotonic time we are in: a key that moves on by itself."""
    return int(time.monotonic() // seconds)


def config_version() -> int:
    """The shared version number, read from the cache at most every VERSION_TTL s per process.

    Heartbeats of thousands of accounts ask for it; one read per half second serves them all."""
    return VERSIONS.get_or_build(_time_slice(VERSION_TTL), _read_version)


def _read_version() -> int:
    value = cache.get(VERSION_KEY)
    return _fresh_version() if value is None else value


def _fresh_version() -> int:
    """A number for a missing version key (Redis flushed or restarted) that no process has cached yet.

    Starting again from 0 would let a process trust a snapshot it took under an old 0 (an account then without
    links stays "idle" and its trades are not copied). Microseconds since the epoch are above any number reached
    by bumps; ``add`` (SET NX) makes every process agree on one.
    """
    cache.add(VERSION_KEY, time.time_ns() // 1000, None)
    return cache.get(VERSION_KEY) or 0


def forget_config_version() -> None:
    VERSIONS.clear()


def forget_local_config() -> None:
    """Drop this process's snapshots (tests, whose cache is emptied between them, start from nothing)."""
    CONFIGS.clear()
    CONFIGURED.clear()
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


def configured_accounts(version: int) -> frozenset[str]:
    """Every account that is a master, a slave or has a rule, read once per version per process:
    the heartbeats of all other accounts need no query at all."""
    return CONFIGURED.get_or_build(version, _configured_ids)


def _configured_ids() -> frozenset[str]:
    ids = set()
    for master_id, slave_id in CopyLink.objects.filter(active=True).values_list("master_id", "slave_id"):
        ids.update((str(master_id), str(slave_id)))
    ids.update(str(a) for a in Rule.objects.filter(active=True).values_list("account_id", flat=True))
    return frozenset(ids)


def account_config(account_id) -> AccountConfig:
    key = str(account_id)
    version = config_version()
    return CONFIGS.get_or_build((key, version), lambda: _snapshot(key, version))


def _snapshot(account_id: str, version: int) -> AccountConfig:
    if account_id in configured_accounts(version):
        return _load(account_id)
    return AccountConfig(account_id=account_id)


def account_config_in_memory(account_id) -> AccountConfig | None:
    """``account_config`` when this process can answer it with no I/O, else None. The EA fast path asks it on the
    event loop for every beat.

    The version comes from this VERSION_TTL slice or, while a thread reads the new slice's (started here, one at a
    time), from the slice before: an edit made in another process shows within two slices. Without that, every
    beat of the first moments of each slice would go to a worker thread only to learn that nothing changed, and
    under load those beats queue up behind each other (the heartbeat benchmark fell from thousands of beats a
    second to a few hundred)."""
    now = _time_slice(VERSION_TTL)
    version = VERSIONS.peek(now)
    if version is None:
        _read_version_soon()
        version = VERSIONS.peek(now - 1)
        if version is None:
            return None
    return CONFIGS.peek((str(account_id), version))


_reading = threading.Lock()


def _read_version_soon() -> None:
    """Read this slice's version in a thread of its own, unless one is at it already."""
    if not _reading.acquire(blocking=False):
        return

    def read() -> None:
        try:
            config_version()
        except Exception as exc:  # the next beat's look-up tries again, the slow way
            logger.warning("reading the copy configuration version failed: %s", exc)
        finally:
            _reading.release()

    threading.Thread(target=read, name="copy-config-version", daemon=True).start()


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
    incoming = list(CopyLink.objects.filter(slave_id=account_id, active=True).order_by("id"))
    return AccountConfig(
        account_id=account_id,
        links_out=links,
        incoming_links=len(incoming),
        guarded_links=[
            link for link in incoming if link.equity_stop is not None or link.equity_stop_percent is not None
        ],
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
    CONFIGS.clear()


# Ratio sizing needs each slave's balance/equity/free margin; seconds-old figures size a lot just as well.
FIGURES_TTL_SECONDS = 5.0
# Keyed by (account id, FIGURES_TTL_SECONDS-long slice of time): figures are re-read in each new slice.
FIGURES: Memo[AccountFigures] = Memo("copytrading.slave_figures", size=50_000)


def slave_figures(ids: list[str]) -> dict[str, AccountFigures]:
    """Balance, equity and free margin of each account, read at most every FIGURES_TTL_SECONDS per process."""
    moment = _time_slice(FIGURES_TTL_SECONDS)
    found = {i: hit for i in ids if (hit := FIGURES.peek((i, moment))) is not None}
    missing = [i for i in ids if i not in found]
    if missing:
        rows = TradingAccount.objects.filter(pk__in=missing).values_list("pk", "balance", "equity", "margin_free")
        for pk, balance, equity, free in rows:
            found[str(pk)] = _keep(FIGURES, (str(pk), moment), AccountFigures(balance, equity, free))
    return found


def _keep(memo: Memo[AccountFigures], key: tuple, value: AccountFigures) -> AccountFigures:
    """``value`` kept in ``memo`` under ``key`` (read in one query with others, so not built one by one)."""
    return memo.get_or_build(key, lambda: value)


def clear_figures_cache() -> None:
    FIGURES.clear()
