"""Long polls of the EA's lean ASGI path wait here: one Redis subscription per event loop wakes them."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from mt5bridge.ea import store

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_SECONDS = 1.0  # closing the wake-up subscription when its loop shuts down


class WakeUps:
    """The long polls waiting in this event loop, per account, and the one Redis subscription that wakes them.

    A poll registers before it looks at its queue, so a command cached after that look always wakes it. Messages
    published while the subscription is down are lost, so every (re)subscription wakes every waiter to look again.
    """

    def __init__(self):
        self.waiting: dict[str, set[asyncio.Event]] = {}
        self.turns: dict[str, asyncio.Lock] = {}
        self.listening = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._listen())

    def register(self, account_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self.waiting.setdefault(account_id, set()).add(event)
        self.turns.setdefault(account_id, asyncio.Lock())
        return event

    def unregister(self, account_id: str, event: asyncio.Event) -> None:
        events = self.waiting.get(account_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self.waiting[account_id]
                del self.turns[account_id]

    def turn(self, account_id: str) -> asyncio.Lock:
        """Polls of one account waiting here look at its queue one at a time, so a wake-up hands a command to one
        of them (``commands_deliver`` itself does not exclude a concurrent caller)."""
        return self.turns[account_id]

    def wake(self, account_id: str) -> None:
        for event in self.waiting.get(account_id, ()):
            event.set()

    def wake_all(self) -> None:
        for events in self.waiting.values():
            for event in events:
                event.set()

    async def _listen(self) -> None:
        delay = 0.1
        redis = store.async_client()
        try:
            while True:
                pubsub = redis.pubsub()
                try:
                    await pubsub.subscribe(store.wake_channel())
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self.wake(message["data"])
                        elif message["type"] == "subscribe":  # also after redis-py reconnects by itself
                            self.listening.set()
                            self.wake_all()
                            delay = 0.1
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    logger.warning("EA wake-up subscription lost (%s); resubscribing in %.1f s", exc, delay)
                finally:
                    self.listening.clear()
                    # Bounded: closing a pub/sub whose read was just cancelled can wait forever on its connection,
                    # and a loop shutting down waits for this task.
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await asyncio.wait_for(pubsub.aclose(), CLOSE_TIMEOUT_SECONDS)
                self.wake_all()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        finally:
            # Cancelled only when the loop shuts down (server exit, or the end of a test's loop). Bounded: closing a
            # connection awaits its transport's ``wait_closed()``, which can wait forever when another task's read
            # still holds the transport (redis-py #3941) and would keep the loop from closing.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(redis.aclose(), CLOSE_TIMEOUT_SECONDS)


_wake_ups: dict = {}


def wake_ups() -> WakeUps:
    """The running loop's ``WakeUps`` (one per process under an ASGI server; tests run a loop per request)."""
    loop = asyncio.get_running_loop()
    for closed in [known for known in _wake_ups if known.is_closed()]:
        del _wake_ups[closed]
    if loop not in _wake_ups:
        _wake_ups[loop] = WakeUps()
    return _wake_ups[loop]
