"""Live updates over the WebSocket: refusal without auth, only viewers receive, catch-up, price-driven pushes."""

from __future__ import annotations

import asyncio
import functools
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from guardian.shortcuts import assign_perm

from accounts.consumers import AccountsConsumer
from accounts.live import publish_account_update
from accounts.models import TradingAccount
from tests.personas import UserFactory

pytestmark = pytest.mark.django_db

APP = AccountsConsumer.as_asgi()


@pytest.fixture(autouse=True)
def _keep_test_connection(monkeypatch):
    """database_sync_to_async closes connections not in autocommit, which is the test's own transaction.

    Keeping it open lets these tests run inside a rolled-back transaction instead of flushing every
    table after each test (several seconds each); the browser tests cover the real connection handling.
    """
    import channels.db

    monkeypatch.setattr(channels.db, "close_old_connections", lambda: None)


def run_async(test):
    """Run an async test body from a sync test (database calls stay on the test's connection)."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        return async_to_sync(test)(*args, **kwargs)

    return wrapper


def _communicator(user, account_id=None) -> WebsocketCommunicator:
    path = f"/ws/accounts/{account_id}/" if account_id else "/ws/accounts/"
    communicator = WebsocketCommunicator(APP, path)
    communicator.scope["user"] = user
    communicator.scope["url_route"] = {"kwargs": {"account_id": account_id} if account_id else {}}
    return communicator


async def _drain(communicator, timeout=0.3) -> list[dict]:
    messages = []
    # receive_nothing() waits without cancelling the consumer (a receive timeout would).
    while not await communicator.receive_nothing(timeout=timeout):
        messages.append(await communicator.receive_json_from())
    return messages


@run_async
async def test_socket_refuses_anonymous_users():
    communicator = _communicator(AnonymousUser())
    connected, code = await communicator.connect()
    assert not connected and code == 4401


@run_async
async def test_owner_gets_the_latest_figures_on_connect_and_every_update(owned_account):
    communicator = _communicator(owned_account.owner)
    connected, _ = await communicator.connect()
    assert connected
    hello = await communicator.receive_json_from()
    assert hello == {"type": "hello", "accounts": [str(owned_account.pk)]}
    catch_up = await communicator.receive_json_from()
    assert catch_up["account"] == str(owned_account.pk) and catch_up["equity"] == str(owned_account.equity)

    await sync_to_async(TradingAccount.objects.filter(pk=owned_account.pk).update)(equity=Decimal("12345.67"))
    await sync_to_async(publish_account_update)(owned_account.pk)
    update = await communicator.receive_json_from(timeout=1)
    assert update["type"] == "account" and update["equity"] == "12345.67"
    await communicator.disconnect()


@run_async
async def test_an_outsider_receives_nothing_about_the_account(owned_account):
    outsider = await sync_to_async(UserFactory)()
    communicator = _communicator(outsider)
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_json_from() == {"type": "hello", "accounts": []}
    await sync_to_async(publish_account_update)(owned_account.pk)
    assert await _drain(communicator) == []
    await communicator.disconnect()


@run_async
async def test_an_outsider_cannot_subscribe_to_one_account_by_id(owned_account):
    outsider = await sync_to_async(UserFactory)()
    connected, code = await _communicator(outsider, owned_account.pk).connect()
    assert not connected and code == 4404


@run_async
async def test_a_user_the_account_was_shared_with_receives_updates(owned_account):
    viewer = await sync_to_async(UserFactory)()
    await sync_to_async(assign_perm)("accounts.view_tradingaccount", viewer, owned_account)
    communicator = _communicator(viewer, owned_account.pk)
    connected, _ = await communicator.connect()
    assert connected
    await _drain(communicator)
    await sync_to_async(publish_account_update)(owned_account.pk)
    update = await communicator.receive_json_from(timeout=1)
    assert update["account"] == str(owned_account.pk)
    await communicator.disconnect()


@run_async
async def test_refresh_message_resends_the_latest_figures(owned_account):
    communicator = _communicator(owned_account.owner)
    await communicator.connect()
    await _drain(communicator)
    await communicator.send_json_to({"type": "refresh"})
    again = await communicator.receive_json_from(timeout=1)
    assert again["account"] == str(owned_account.pk)
    await communicator.disconnect()


@run_async
async def test_nobody_watching_means_no_push_and_a_closed_page_stops_the_pushes(owned_account):
    from channels.layers import get_channel_layer

    from accounts.live import account_group, is_watched

    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(account_group(owned_account.pk), listener)  # in the group, but no page counted
    assert not await sync_to_async(is_watched)(owned_account.pk)
    await sync_to_async(publish_account_update)(owned_account.pk)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await layer.receive(listener)

    # A cancelled receive ends a channel on the pub/sub layer (it unsubscribes), so listen afresh.
    listener = await layer.new_channel()
    await layer.group_add(account_group(owned_account.pk), listener)
    communicator = _communicator(owned_account.owner, str(owned_account.pk))
    assert (await communicator.connect())[0]
    assert await sync_to_async(is_watched)(owned_account.pk)
    await sync_to_async(publish_account_update)(owned_account.pk)
    async with asyncio.timeout(2):
        assert (await layer.receive(listener))["account"] == str(owned_account.pk)
    await communicator.disconnect()
    assert not await sync_to_async(is_watched)(owned_account.pk)
