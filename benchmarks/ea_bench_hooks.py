"""A stand-in copy listener for the EA-to-EA benchmark: a master's new position becomes one command for its slave.

Installed in place of copy trading's listener with BENCH_HOOKS=ea_bench_hooks (``ea_bench_settings`` adds
``StandInConfig`` to the apps); it costs what the real listener's minimum costs: one diff and one command_enqueue
in the heartbeat path.
"""

from __future__ import annotations

from django.apps import AppConfig

from mt5bridge import events
from mt5bridge.commands import command_enqueue
from mt5bridge.ea import store


class StandInListener:
    def on_ea_state(self, previous, current) -> None:
        if previous is None:
            return
        known = {p.ticket for p in previous.positions}
        fresh = [p for p in current.positions if p.ticket not in known]
        if not fresh:
            return
        slave = store.client().get(f"bench:slave_of:{current.account_id}")
        if not slave:
            return
        for pos in fresh:
            command_enqueue(
                account_id=slave,
                kind="open_market",
                origin="copy",
                idempotency_key=f"copy:{pos.ticket}",
                params={
                    "symbol": pos.symbol,
                    "side": "buy" if pos.type == 0 else "sell",
                    "volume": str(pos.volume),
                    "comment": str(pos.ticket),
                },
            )

    def on_command_result(self, command) -> None:
        return None

    def is_idle(self, account_id: str) -> bool:
        return False


class StandInConfig(AppConfig):
    name = "ea_bench_hooks"
    label = "ea_bench_hooks"

    def ready(self) -> None:
        # Copy trading's ready() ran first (it is listed before this app): take its listener's place.
        from copytrading.hooks import listener

        events.unregister(listener)
        events.register(StandInListener())
