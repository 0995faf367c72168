"""Per-process memos: the one kind of module-level cache, with one invalidation story.

A memo keeps, in one process, a value built from settings or the database that would cost time to build on
every call (a compiled SQL statement, a cipher). Every memo follows the same three rules:

- **keyed**: the key holds every input the value depends on (the permission and the content type id, the
  configured keys...), so a changed input is a new key and a stale value is never returned for it;
- **bounded**: at most ``size`` entries; the least recently used goes first;
- **dropped on one signal**: `memos_cleared` empties every memo of the process. `clear_all_memos` sends it,
  from a test that changes what a memo was built from, or from a write that does, once its transaction
  commits (``transaction.on_commit(clear_all_memos)``), so a value built in between is dropped too.

Data shared between processes (plan catalogue, EA tokens, live state) is not a memo: it lives in the Django
cache (Redis) under a versioned key, and its owner deletes or bumps that key.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.dispatch import Signal

V = TypeVar("V")

#: Sent (with ``sender=None``) to empty every memo of this process.
memos_cleared = Signal()


class Memo(Generic[V]):
    def __init__(self, name: str, *, size: int = 256):
        self.name = name
        self.size = size
        self._values: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        memos_cleared.connect(self._on_cleared, weak=False, dispatch_uid=f"memo:{name}")

    def get_or_build(self, key: Hashable, build: Callable[[], V]) -> V:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = build()  # outside the lock: building may query the database
        with self._lock:
            self._values[key] = value
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return value

    def peek(self, key: Hashable) -> V | None:
        """The value kept for ``key``, or None: never builds (for a caller that must not wait on I/O)."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        return None

    def put(self, key: Hashable, value: V) -> None:
        """Keep ``value`` for ``key`` (a value learnt on the way, not built here)."""
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._values.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def __len__(self) -> int:
        return len(self._values)

    def _on_cleared(self, **_kwargs) -> None:
        self.clear()


def clear_all_memos() -> None:
    memos_cleared.send(sender=None)
