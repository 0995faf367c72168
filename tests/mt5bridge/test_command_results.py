"""An EA's command results: stored once, the terminal's word over a server-side expiry, other accounts' ids ignored."""

from __future__ import annotations

import uuid

import pytest

from accounts.models import TradingAccount
from mt5bridge import commands as cq
from mt5bridge.ea.models import Command
from mt5bridge.ea.protocol import CommandResult
from tests.personas import SIM_SERVER, next_login

pytestmark = pytest.mark.django_db


def _enqueue(account_id) -> Command:
    return cq.command_enqueue(account_id=account_id, kind="close_all", params={}, origin="admin")


@pytest.fixture
def outsider_account(outsider) -> TradingAccount:
    return TradingAccount.objects.create(
        owner=outsider, login=next_login(), server=SIM_SERVER, name="Other", password_encrypted=b"",
        gateway_kind="simulated",
    )  # fmt: skip


def _result(command_id, status="executed", **overrides) -> CommandResult:
    fields = {"retcode": 10009, "message": "done", "result": {"position": 777, "volume": "0.10"}} | overrides
    return CommandResult(id=command_id, status=status, **fields)


def test_a_result_is_stored_once_and_a_repeat_is_a_duplicate(owned_account):
    command = _enqueue(owned_account.pk)
    first = cq.command_results_apply(account_id=owned_account.pk, results=[_result(command.id)])
    again = cq.command_results_apply(
        account_id=owned_account.pk, results=[_result(command.id, "failed", retcode=10019, message="no money")]
    )
    assert [o.outcome for o in first] == ["applied"]
    assert [o.outcome for o in again] == ["duplicate"]
    command.refresh_from_db()
    assert (command.status, command.retcode, command.message) == ("executed", 10009, "done")
    assert command.result == {"position": 777, "volume": "0.10"}
    assert command.finished_at is not None


def test_a_result_after_the_server_expired_the_command_wins_and_says_so(owned_account):
    command = _enqueue(owned_account.pk)
    cq.commands_expire(account_id=owned_account.pk, command_ids=[str(command.id)])
    (outcome,) = cq.command_results_apply(account_id=owned_account.pk, results=[_result(command.id)])
    assert outcome.outcome == "applied"
    command.refresh_from_db()
    assert command.status == "executed"
    assert command.message == "done (after server marked it expired)"


def test_a_long_message_is_cut_to_the_column(owned_account):
    command = _enqueue(owned_account.pk)
    cq.command_results_apply(account_id=owned_account.pk, results=[_result(command.id, "failed", message="x" * 400)])
    command.refresh_from_db()
    assert (command.status, len(command.message)) == ("failed", 255)


def test_unknown_ids_and_other_accounts_commands_are_ignored(owned_account, outsider_account):
    theirs = _enqueue(outsider_account.pk)
    outcomes = cq.command_results_apply(
        account_id=owned_account.pk, results=[_result(theirs.id), _result(uuid.uuid4())]
    )
    assert [o.outcome for o in outcomes] == ["unknown", "unknown"]
    assert Command.objects.get(pk=theirs.pk).status == "pending"


def test_the_stored_command_reaches_the_listeners_as_stored(owned_account, monkeypatch):
    heard = []
    monkeypatch.setattr(cq.events, "command_result_stored", heard.append)
    command = _enqueue(owned_account.pk)
    cq.command_results_apply(account_id=owned_account.pk, results=[_result(command.id)])
    (stored,) = heard
    assert stored.pk == command.pk
    assert (stored.status, stored.result, stored.params) == (
        "executed",
        {"position": 777, "volume": "0.10"},
        command.params,
    )
    assert stored.finished_at is not None and stored.account_id == owned_account.pk
