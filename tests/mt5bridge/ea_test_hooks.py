"""Hooks the EA tests install through settings.EA_HOOKS_MODULE: they record what they receive."""

from __future__ import annotations

states: list = []
results: list = []


def on_ea_state(previous, current) -> None:
    states.append((previous, current))


def on_command_result(command) -> None:
    results.append(command)


def reset() -> None:
    states.clear()
    results.clear()
