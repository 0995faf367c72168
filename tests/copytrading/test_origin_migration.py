"""Commands carry an opaque origin: the migration that turned copy link ids into references, and the queue's checks."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from config.errors import ServiceError
from copytrading.models import link_id_of
from mt5bridge.commands import command_enqueue
from mt5bridge.ea.models import Command

from .conftest import make_account

BEFORE = [("mt5bridge", "0005_simulated_server_is_its_own_app")]
AFTER = [("mt5bridge", "0006_command_origin_ref")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_copy_commands_keep_their_link_as_an_origin_reference(owner):
    account = make_account(owner, "MetaSim-Demo")
    try:
        old = migrate(BEFORE).get_model("mt5bridge", "Command")
        copy = old.objects.create(account_id=account.pk, kind="close_all", origin="copy", link_id=42)
        manual = old.objects.create(account_id=account.pk, kind="close_all", origin="admin")
    finally:
        migrate(AFTER)

    assert link_id_of(Command.objects.get(pk=copy.pk).origin_ref) == 42
    assert Command.objects.get(pk=copy.pk).origin_ref == "copy-link:42"
    assert Command.objects.get(pk=manual.pk).origin_ref == ""


@pytest.mark.django_db
def test_the_queue_keeps_any_well_formed_origin_and_its_reference_without_reading_them(owner):
    account = make_account(owner, "MetaSim-Demo")
    command = command_enqueue(
        account_id=account.pk, kind="close_all", params={}, origin="bonus_desk", origin_ref="bonus-op:7"
    )
    assert (command.origin, command.origin_ref) == ("bonus_desk", "bonus-op:7")
    for origin, ref in (("Copy", ""), ("copy link", ""), ("", ""), ("copy", "x" * 65)):
        with pytest.raises(ServiceError) as refused:
            command_enqueue(account_id=account.pk, kind="close_all", params={}, origin=origin, origin_ref=ref)
        assert refused.value.code == "invalid_origin"
