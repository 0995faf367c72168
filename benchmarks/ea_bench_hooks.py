"""A stand-in copy hook for the EA-to-EA benchmark: a master's new position becomes one command for its slave.

Used only when copytrading.hooks is not there yet (EA_HOOKS_MODULE=ea_bench_hooks); it costs what the
real hook's minimum costs: one diff and one command_enqueue in the heartbeat path.
"""

from __future__ import annotations

from mt5bridge.commands import command_enqueue
from mt5bridge.ea import store


def on_ea_state(previous, current) -> None:
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


def on_command_result(command) -> None:
    return None
