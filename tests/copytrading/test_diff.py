"""The master state diff: every kind of change becomes the right intent."""

from __future__ import annotations

from decimal import Decimal as D

from copytrading import diff as d
from copytrading.diff import state_diff

from .factories import order, pos, state


def kinds(intents):
    return [(i.kind, i.ticket) for i in intents]


def test_first_state_yields_nothing():
    assert state_diff(None, state(positions=[pos(1)])) == []


def test_new_position_is_an_open():
    intents = state_diff(state(), state(positions=[pos(7, volume="0.3")]))
    assert kinds(intents) == [(d.OPEN, 7)]
    assert intents[0].volume == D("0.3")


def test_vanished_position_is_a_full_close():
    intents = state_diff(state(positions=[pos(7)]), state())
    assert kinds(intents) == [(d.CLOSE, 7)]


def test_smaller_volume_is_a_partial_close_with_the_closed_volume():
    intents = state_diff(state(positions=[pos(7, volume="1.0")]), state(positions=[pos(7, volume="0.4")]))
    assert kinds(intents) == [(d.PARTIAL_CLOSE, 7)]
    assert (intents[0].volume, intents[0].previous_volume, intents[0].remaining_volume) == (
        D("0.6"),
        D("1.0"),
        D("0.4"),
    )


def test_larger_volume_on_a_netting_master_is_an_increase():
    intents = state_diff(state(positions=[pos(7, volume="1.0")]), state(positions=[pos(7, volume="1.5")]))
    assert kinds(intents) == [(d.INCREASE, 7)]
    assert intents[0].volume == D("0.5")


def test_changed_stops_are_a_modify():
    intents = state_diff(state(positions=[pos(7, sl="1")]), state(positions=[pos(7, sl="2", tp="9")]))
    assert kinds(intents) == [(d.MODIFY, 7)]


def test_netting_reversal_is_a_close_then_an_open():
    intents = state_diff(state(positions=[pos(7, type=0)]), state(positions=[pos(7, type=1)]))
    assert kinds(intents) == [(d.CLOSE, 7), (d.OPEN, 7)]


def test_pending_placed_modified_and_cancelled():
    assert kinds(state_diff(state(), state(orders=[order(9)]))) == [(d.PENDING_PLACED, 9)]
    moved = state_diff(state(orders=[order(9, price="1")]), state(orders=[order(9, price="2")]))
    assert kinds(moved) == [(d.PENDING_MODIFIED, 9)]
    assert kinds(state_diff(state(orders=[order(9)]), state())) == [(d.PENDING_CANCELLED, 9)]


def test_pending_that_became_a_position_is_triggered_not_cancelled():
    # POSITION_IDENTIFIER of the new position is the order's ticket.
    intents = state_diff(state(orders=[order(9)]), state(positions=[pos(9)]))
    assert kinds(intents) == [(d.PENDING_TRIGGERED, 9)]


def test_unchanged_state_yields_nothing():
    s = state(positions=[pos(1), pos(2)], orders=[order(3)])
    assert state_diff(s, s) == []
