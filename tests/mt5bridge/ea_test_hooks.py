"""A bridge listener for the EA tests: it records every event it hears."""

from __future__ import annotations


class Recorder:
    """``mt5bridge.events.BridgeListener`` that keeps what it receives; never idle, so every beat reaches it."""

    def __init__(self):
        self.states: list = []
        self.results: list = []

    def on_ea_state(self, previous, current) -> None:
        self.states.append((previous, current))

    def on_command_result(self, command) -> None:
        self.results.append(command)

    def is_idle(self, account_id: str) -> bool:
        return False
