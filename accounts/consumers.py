"""WebSocket consumer of the trader web app: live figures of the accounts a user may view."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .live import account_group, payloads_for, watchers_add, watchers_remove
from .models import TradingAccount
from .permissions import restrict

VIEW = "accounts.view_tradingaccount"
MAX_ACCOUNTS = 500


@database_sync_to_async
def _visible_account_ids(user, wanted=None) -> list[str]:
    """The accounts ``user`` may view (the first ``MAX_ACCOUNTS``), or of ``wanted`` only: [] when not visible."""
    accounts = restrict(user, VIEW, TradingAccount.objects.all())
    if wanted is not None:
        accounts = accounts.filter(pk=wanted)  # any of the user's accounts, not only among the first 500
    return [str(pk) for pk in accounts.values_list("pk", flat=True)[:MAX_ACCOUNTS]]


@database_sync_to_async
def _catch_up(account_ids: list[str]) -> list[dict]:
    return payloads_for(account_ids)


class AccountsConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/accounts/`` (every visible account) or ``/ws/accounts/<uuid>/`` (one account).

    Refuses anonymous sockets; joins only the groups of accounts `restrict` lets the user view;
    sends the latest figures on connect, so a reconnecting page catches up.
    """

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        wanted = self.scope["url_route"]["kwargs"].get("account_id")
        visible = await _visible_account_ids(user, wanted)
        if wanted is not None and not visible:
            await self.close(code=4404)
            return
        self.account_ids = visible
        for account_id in visible:
            await self.channel_layer.group_add(account_group(account_id), self.channel_name)
        await database_sync_to_async(watchers_add)(visible)
        await self.accept()
        await self.send_json({"type": "hello", "accounts": visible})
        for payload in await _catch_up(visible):
            await self.send_json(payload)

    async def disconnect(self, code):
        for account_id in getattr(self, "account_ids", []):
            await self.channel_layer.group_discard(account_group(account_id), self.channel_name)
        if getattr(self, "account_ids", None):
            await database_sync_to_async(watchers_remove)(self.account_ids)

    async def receive_json(self, content, **kwargs):
        # The page asks for a fresh copy after it was hidden or offline for a while.
        if isinstance(content, dict) and content.get("type") == "refresh":
            for payload in await _catch_up(self.account_ids):
                await self.send_json(payload)

    async def dispatch(self, message):
        # An account update touches no database, so it skips Channels' per-message check of old database
        # connections: a hop to the process's one thread for synchronous code, per update and per socket (at
        # 10,000 sockets, 10,000 hops a second through one thread). Everything else is dispatched as usual.
        if message.get("type") == "account.changed":
            await self.account_changed(message)
        else:
            await super().dispatch(message)

    async def account_changed(self, event):
        text = event.get("text")  # accounts.live: the payload encoded once for every socket of the account
        if text is not None:
            await self.send(text_data=text)
        elif event.get("data") is not None:  # a payload as a dict (copytrading's rule hits)
            await self.send_json(event["data"])
