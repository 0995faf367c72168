"""Live fan-out: one published update reaches every page open on that account, and no page of another account."""

from __future__ import annotations

import json
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.live import figures_payload, publish_account_update
from accounts.models import TradingAccount
from tests.accounts.test_live import _communicator, _drain, _keep_test_connection, run_async  # noqa: F401
from tests.personas import next_login

pytestmark = pytest.mark.django_db


def _second_account(owner) -> TradingAccount:
    return TradingAccount.objects.create(
        owner=owner,
        login=next_login(),
        server="MetaSim-Demo",
        name="Second",
        password_encrypted=b"",
        gateway_kind="simulated",
    )


async def _open(user, account_id) -> WebsocketCommunicator:
    communicator = _communicator(user, str(account_id))
    connected, _ = await communicator.connect()
    assert connected
    await _drain(communicator)  # hello and the catch-up
    return communicator


@run_async
async def test_an_update_reaches_every_page_of_its_account_and_none_of_another(owned_account):
    other = await sync_to_async(_second_account)(owned_account.owner)
    pages = [await _open(owned_account.owner, owned_account.pk) for _ in range(3)]
    other_pages = [await _open(owned_account.owner, other.pk) for _ in range(2)]
    payload = figures_payload(owned_account.pk, {"balance": "10000.00", "equity": "10123.45"}, [])

    await sync_to_async(publish_account_update)(owned_account.pk, payload)

    for page in pages:
        update = await page.receive_json_from(timeout=2)
        assert update["account"] == str(owned_account.pk) and update["equity"] == "10123.45"
        assert update["sent_at"] == payload["sent_at"]
        assert await _drain(page) == []  # exactly once
    for page in other_pages:
        assert await _drain(page) == []
    for page in pages + other_pages:
        await page.disconnect()


@run_async
async def test_an_update_published_from_a_thread_without_an_event_loop_arrives(owned_account):
    """The sync task and price loops publish from plain threads (no event loop of their own)."""
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    if isinstance(get_channel_layer(), InMemoryChannelLayer):
        pytest.skip("the in-memory layer reaches only consumers of the loop it is sent from (no Redis)")
    page = await _open(owned_account.owner, owned_account.pk)
    payload = figures_payload(owned_account.pk, {"equity": "9999.99"}, [])
    thread = threading.Thread(target=publish_account_update, args=(owned_account.pk, payload))
    thread.start()
    await sync_to_async(thread.join)()
    update = await page.receive_json_from(timeout=2)
    assert update["account"] == str(owned_account.pk) and update["equity"] == "9999.99"
    await page.disconnect()


@run_async
async def test_a_message_with_a_payload_dict_is_still_forwarded_as_it_is(owned_account):
    """Rule hits (copytrading) send the payload as a dict on the same group and message type."""
    from channels.layers import get_channel_layer

    from accounts.live import account_group

    page = await _open(owned_account.owner, owned_account.pk)
    data = {"type": "rule_hit", "account": str(owned_account.pk), "rule_hit": {"id": 7}}
    await get_channel_layer().group_send(
        account_group(owned_account.pk), {"type": "account.changed", "account": str(owned_account.pk), "data": data}
    )
    assert await page.receive_json_from(timeout=2) == data
    await page.disconnect()


def test_the_message_carries_the_payload_encoded_once_as_the_browser_reads_it(owned_account):
    from accounts.live import account_message

    payload = figures_payload(owned_account.pk, {"equity": "1.50"}, [{"ticket": 1, "profit": "2.00"}])
    message = account_message(payload)
    assert message["type"] == "account.changed" and message["account"] == str(owned_account.pk)
    assert json.loads(message["text"]) == payload


@run_async
async def test_any_of_a_traders_accounts_can_be_watched_not_only_the_first_ones(owned_account, monkeypatch):
    """The all-accounts socket lists the first MAX_ACCOUNTS; a page of one account checks that account only."""
    import accounts.consumers

    monkeypatch.setattr(accounts.consumers, "MAX_ACCOUNTS", 1)
    second = await sync_to_async(_second_account)(owned_account.owner)
    pages = [await _open(owned_account.owner, account.pk) for account in (owned_account, second)]
    await sync_to_async(publish_account_update)(second.pk, figures_payload(second.pk, {"equity": "5.00"}, []))
    assert (await pages[1].receive_json_from(timeout=2))["account"] == str(second.pk)
    assert await _drain(pages[0]) == []
    for page in pages:
        await page.disconnect()
