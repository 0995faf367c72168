"""The heartbeat pipeline's plan: a pure function of (beat, fingerprint, context). A steady beat gets the empty plan;
every input that calls for work shows up as its effect, whichever edge received the beat."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mt5bridge.ea.pipeline import BeatContext, BeatPlan, Timing, cadence_seconds, plan_beat
from mt5bridge.ea.protocol import decode_heartbeat
from mt5bridge.ea.state import state_fingerprint, state_to_json
from tests.mt5bridge.ea_helpers import beat_body

TIMING = Timing(persist_seconds=30, live_float_seconds=1, gate_cache_seconds=60)
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
T = NOW.timestamp()


def _beat(**overrides):
    body = beat_body(5100001, **overrides)
    return decode_heartbeat(json.dumps(body).encode(), account_id="a1", login=5100001, received_at=NOW)


BEAT = _beat()
FP = state_fingerprint(BEAT.state)
STEADY = BeatContext(
    previous_json=state_to_json(BEAT.state),
    meta={"fp": FP, "persisted": str(T - 5), "gate": "", "gate_at": str(T - 5), "gate_epoch": "0:0", "pub": str(T)},
    beats=10,
    epoch="0:0",
    queued={},
    watched=False,
    listeners_idle=True,
)


def plan(beat=BEAT, ctx=STEADY) -> BeatPlan:
    return plan_beat(beat, state_fingerprint(beat.state), ctx, TIMING)


def test_a_steady_beat_is_quiet_and_allowed():
    steady = plan()
    assert steady.quiet and steady.effects == () and steady.allowed and steady.reason == ""


def _moved_position():
    body = beat_body(5100001)
    body["positions"][0]["volume"] = "0.20"
    return decode_heartbeat(json.dumps(body).encode(), account_id="a1", login=5100001, received_at=NOW)


def _results():
    result = {"id": "0b9f0d4e-2a6b-4f8e-9a51-8f5a1c2d3e4f", "status": "executed", "retcode": 10009}
    return _beat(results=[result])


# Each departure from the steady beat, and the effects it must bring (at least these).
DEPARTURES = {
    "no cached gate": (
        BEAT,
        replace(STEADY, meta={k: v for k, v in STEADY.meta.items() if k != "gate"}),
        {"look_up_gate"},
    ),
    "cached gate aged": (BEAT, replace(STEADY, meta={**STEADY.meta, "gate_at": "0"}), {"refresh_gate"}),
    "gate epoch moved": (BEAT, replace(STEADY, epoch="1:0"), {"look_up_gate"}),
    "gate just looked up": (BEAT, replace(STEADY, gate=""), {"remember"}),
    "state changed": (_moved_position(), STEADY, {"notify", "persist"}),
    "state changed, a dashboard watches": (_moved_position(), replace(STEADY, watched=True), {"publish"}),
    "first beat": (BEAT, replace(STEADY, previous_json=None), {"notify"}),
    "cadence write due": (BEAT, replace(STEADY, meta={**STEADY.meta, "persisted": str(T - 31)}), {"persist"}),
    "command queued": (BEAT, replace(STEADY, queued={"c1": "{}"}), {"deliver"}),
    "queue not cached": (BEAT, replace(STEADY, queued=None), {"deliver"}),
    "queue check due": (BEAT, replace(STEADY, queue_check=True), {"check_queue"}),
    "listener busy": (BEAT, replace(STEADY, listeners_idle=False), {"notify"}),
    "command results": (_results(), STEADY, {"apply_results"}),
    "no Redis": (BEAT, replace(STEADY, durable_only=True), {"persist"}),
}


@pytest.mark.parametrize("name", list(DEPARTURES))
def test_each_departure_from_a_steady_beat_brings_its_effect(name):
    beat, ctx, expected = DEPARTURES[name]
    made = plan(beat, ctx)
    assert not made.quiet and expected <= set(made.effects), made


def test_a_watched_dashboard_gets_moved_floating_figures_at_its_cadence_only():
    moved = _beat(account={**beat_body(1)["account"], "equity": "10099.00"})
    watched = replace(STEADY, watched=True, meta={**STEADY.meta, "pub": str(T - 2)})
    assert plan(moved, watched).publish and plan(moved, watched).remember["pub"] == T
    assert not plan(moved, replace(watched, meta={**watched.meta, "pub": str(T)})).publish  # pushed this second
    assert not plan(moved, replace(watched, watched=False)).publish  # nobody looks
    assert not plan(BEAT, watched).publish  # nothing moved


def test_a_denied_beat_is_stored_but_reaches_no_listener_and_gets_no_command():
    denied = replace(STEADY, gate="plan_required: no copy trading", queued={"c1": "{}"}, listeners_idle=False)
    made = plan(_moved_position(), denied)
    assert not made.allowed and made.reason.startswith("plan_required")
    assert made.persist == "change" and not made.notify and not made.deliver and not made.check_queue
    assert made.remember["gate"] == made.reason


def test_only_periodic_work_may_be_deferred():
    assert plan(BEAT, replace(STEADY, meta={**STEADY.meta, "persisted": "0"})).deferrable
    assert plan(BEAT, replace(STEADY, queue_check=True)).deferrable
    aged = plan(BEAT, replace(STEADY, meta={**STEADY.meta, "gate_at": "0"}))
    assert aged.deferrable and aged.allowed  # the old answer serves this beat; the refresh happens beside it
    assert not plan(BEAT, replace(STEADY, epoch="1:0")).deferrable  # billing changed: no answer holds
    assert not plan(_moved_position(), STEADY).deferrable  # a change is written before the reply
    assert not plan(BEAT, replace(STEADY, queued={"c1": "{}"})).deferrable
    assert not plan(_results(), STEADY).deferrable


@given(
    changed=st.booleans(),
    first=st.booleans(),
    gate=st.sampled_from(["", "denied", None]),
    idle=st.booleans(),
    queued=st.booleans(),
    check=st.booleans(),
    persisted_ago=st.integers(0, 100),
)
def test_a_plan_is_quiet_exactly_when_the_beat_asks_for_nothing(
    changed, first, gate, idle, queued, check, persisted_ago
):
    meta = {**STEADY.meta, "persisted": str(T - persisted_ago)}
    if gate is None:
        meta.pop("gate")
    else:
        meta["gate"] = gate
    ctx = replace(
        STEADY,
        previous_json=None if first else STEADY.previous_json,
        meta=meta,
        listeners_idle=idle,
        queued={"c1": "{}"} if queued else {},
        queue_check=check,
    )
    made = plan(_moved_position() if changed else BEAT, ctx)
    allowed = gate == ""
    asks = (
        gate is None
        or changed
        or persisted_ago >= cadence_seconds("a1", T - persisted_ago, TIMING)
        or (allowed and (first or not idle or queued or check))
    )
    assert made.quiet is (not asks)


def test_accounts_that_wrote_together_write_again_spread_over_the_last_quarter_of_the_interval():
    # A restart: 2,000 accounts connect in the same second and write their first state together.
    due = [cadence_seconds(f"account-{i}", T, TIMING) for i in range(2000)]

    assert max(due) <= TIMING.persist_seconds  # never later than EA_PERSIST_SECONDS
    assert min(due) >= 0.75 * TIMING.persist_seconds
    seconds = [int(d) for d in due]  # how many write in each second of the interval's last quarter
    per_second = [seconds.count(s) for s in range(23, 30)]
    assert max(per_second) < 2000 / 4, per_second  # spread out, not one burst
    assert cadence_seconds("account-1", T, TIMING) == cadence_seconds("account-1", T, TIMING)  # pure
    assert cadence_seconds("account-1", T, TIMING) != cadence_seconds("account-1", T + 30, TIMING)  # drawn anew


def test_a_change_nobody_watches_is_not_pushed():
    assert not plan(_moved_position(), replace(STEADY, watched=False)).publish
    assert plan(_moved_position(), replace(STEADY, watched=True)).publish
