"""Bridge events: what the EA protocol tells the apps above it, through listeners they register at start-up.

``mt5bridge`` knows no copy or rules concept. An app that reacts to EAs (copy trading) implements
``BridgeListener`` and calls ``register`` from its ``AppConfig.ready()``; the heartbeat and the command queue
then publish to every registered listener. A listener's failure is logged and never fails the beat or loses a
stored result.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mt5bridge.ea.models import Command
    from mt5bridge.ea.state import EAState

logger = logging.getLogger(__name__)


class StateNotHeard(Exception):
    """Raised by a listener that could not finish with a state (its database write failed, say): the bridge then
    offers the same change again with the next beat, so no change is lost to a transient failure. A listener that
    raises must be safe to call twice with the same change."""


class BridgeListener(Protocol):
    def on_ea_state(self, previous: EAState | None, current: EAState) -> None:
        """An accepted heartbeat's state (never a beat answered "denied"), with the account's state before it.
        Runs synchronously in the heartbeat path. Raising (``StateNotHeard`` or any error) has the change offered
        again with the next beat."""

    def on_command_result(self, command: Command) -> None:
        """A command's result was stored (once per command: a repeated result is not published)."""

    def is_idle(self, account_id: str) -> bool:
        """True when ``on_ea_state`` would do nothing for the account, known from this process's memory alone (the
        heartbeat then skips publishing a state that did not change); False when finding out needs I/O."""


_listeners: list[BridgeListener] = []


def register(listener: BridgeListener) -> None:
    """Add a listener (a second registration of the same one is ignored)."""
    if listener not in _listeners:
        _listeners.append(listener)


def unregister(listener: BridgeListener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


@contextlib.contextmanager
def listening(listener: BridgeListener) -> Iterator[BridgeListener]:
    """Register ``listener`` for the duration of a block (tests, benchmarks)."""
    register(listener)
    try:
        yield listener
    finally:
        unregister(listener)


def has_listeners() -> bool:
    return bool(_listeners)


def ea_state_changed(previous: EAState | None, current: EAState) -> bool:
    """Tell every listener; False when one of them failed (the caller offers the change again next beat)."""
    heard = True
    for listener in tuple(_listeners):
        try:
            listener.on_ea_state(previous, current)
        except Exception:  # the listener logs its own failure too
            logger.exception("%r failed on the state of account %s", listener, current.account_id)
            heard = False
    return heard


def command_result_stored(command: Command) -> None:
    for listener in tuple(_listeners):
        try:
            listener.on_command_result(command)
        except Exception:  # the result is stored; a failing listener must not make the EA resend it forever
            logger.exception("%r failed on the result of command %s", listener, command.id)


def all_idle(account_id: str) -> bool:
    """True when no listener has work for the account's state (see ``BridgeListener.is_idle``)."""
    return all(listener.is_idle(account_id) for listener in tuple(_listeners))
