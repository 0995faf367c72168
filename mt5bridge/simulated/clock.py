"""The simulator's notion of "now": the wall clock, or a fixed instant that tests and demos can set."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

_fixed: datetime | None = None


def now() -> datetime:
    """The current instant, UTC-aware, truncated to the millisecond as MT5 stores times."""
    current = _fixed or datetime.now(UTC)
    return current.replace(microsecond=current.microsecond // 1000 * 1000)


def set_now(when: datetime | None) -> None:
    """Fix the clock at ``when`` (aware), or let it follow the wall clock again with ``None``."""
    global _fixed
    if when is not None and when.tzinfo is None:
        raise ValueError("the simulator clock needs an aware datetime")
    _fixed = when.astimezone(UTC) if when else None


def advance(seconds: float) -> datetime:
    """Move a fixed clock forward (tests)."""
    if _fixed is None:
        raise RuntimeError("advance() needs a fixed clock; call set_now() first")
    set_now(_fixed + timedelta(seconds=seconds))
    return now()


@contextmanager
def frozen(when: datetime) -> Iterator[None]:
    previous = _fixed
    set_now(when)
    try:
        yield
    finally:
        set_now(previous)
