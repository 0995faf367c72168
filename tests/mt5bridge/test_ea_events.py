"""Bridge events: listeners registered through ``mt5bridge.events`` hear accepted beats only."""

from __future__ import annotations

import json

import pytest

from accounts.models import TradingAccount
from copytrading.services import copy_link_create
from mt5bridge import events
from mt5bridge.ea.models import Command
from mt5bridge.ea.services import ea_token_issue
from tests.copytrading import conftest as copy_fixtures
from tests.copytrading.conftest import make_account
from tests.mt5bridge.ea_helpers import beat_body, ea_client
from tests.mt5bridge.ea_test_hooks import Recorder

pytestmark = pytest.mark.django_db


_fresh_copy_caches = copy_fixtures._fresh_copy_caches  # autouse: the copy engine's per-process caches


def _beat(token: str, login: int, positions: list) -> dict:
    response = ea_client(token).post(
        "/api/ea/heartbeat", data=json.dumps(beat_body(login, positions=positions)), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def _position(ticket: int) -> dict:
    body = beat_body(1)["positions"][0]
    return {**body, "ticket": ticket, "identifier": ticket}


def test_a_refused_master_is_never_copied(owner, settings, django_capture_on_commit_callbacks):
    settings.EA_GATE_CACHE_SECONDS = 0  # the gate is asked on every beat
    master = make_account(owner, "MetaSim-Live", balance="100000", name="Master")
    slave = make_account(owner, "MetaSim-Demo", balance="5000", name="Slave")
    copy_link_create(user=owner, master_id=master.pk, slave_id=slave.pk, max_delay_seconds=60)
    token = ea_token_issue(account=master)
    with django_capture_on_commit_callbacks(execute=True):
        assert _beat(token, master.login, [])["status"] == "ok"
    # Deactivated behind the token cache's back (a queryset update sends no signal): the token still authenticates
    # until its cache entry expires, and the gate answers "denied".
    TradingAccount.objects.filter(pk=master.pk).update(is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        for ticket in (7001, 7002):
            assert _beat(token, master.login, [_position(ticket)])["status"] == "denied"
    assert not Command.objects.filter(account=slave).exists()


def test_listeners_hear_accepted_beats_and_not_denied_ones(owned_account, settings):
    settings.EA_GATE_CACHE_SECONDS = 0
    token = ea_token_issue(account=owned_account)
    with events.listening(Recorder()) as recorder:
        _beat(token, owned_account.login, [])
        TradingAccount.objects.filter(pk=owned_account.pk).update(is_active=False)
        assert _beat(token, owned_account.login, [_position(9)])["status"] == "denied"
    assert len(recorder.states) == 1


def test_a_listener_registered_for_a_block_hears_nothing_after_it(owned_account):
    token = ea_token_issue(account=owned_account)
    with events.listening(Recorder()) as recorder:
        _beat(token, owned_account.login, [])
    _beat(token, owned_account.login, [])
    assert len(recorder.states) == 1
