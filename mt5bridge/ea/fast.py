"""The EA's ASGI edge: heartbeat, command poll and command-ack served before Django's middleware stack and DRF.

Thousands of EAs beat every second, and a steady beat touches Redis only; session, CSRF, message and DRF machinery
would cost more than the beat. This adapter only speaks ASGI: it routes the three paths, checks the Host as Django
does, reads the body under the protocol's cap and sends the JSON answer. What a request means is ``edge``'s (the
protocol, the same as the DRF views in ``api``) and ``pipeline``'s (the heartbeat). A known token is counted against
its throttle before the body is read; a waiting poll holds no thread. Every other request, and all of them when
``EA_FAST_PATH`` is off, go to Django unchanged; without Redis so does the poll.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

from config.errors import error_body, unavailable
from config.net import scope_client_ip, scope_host_allowed
from mt5bridge.ea import edge, pipeline

logger = logging.getLogger(__name__)

HEARTBEAT_PATHS = frozenset({"/api/ea/heartbeat", "/api/ea/heartbeat/"})
POLL_PATH = "/api/ea/commands"  # exactly the DRF routes (no trailing-slash variants there either)
ACK_PATH = "/api/ea/command-ack"
BAD_HOST = (400, error_body("bad_request", "Bad request."), [])  # what Django's handler400 answers
TOO_LARGE = (413, error_body("too_large", "The body is larger than the protocol allows."), [])


class EAFastPath:
    """ASGI middleware: serve the three EA exchanges, pass everything else to ``app``."""

    def __init__(self, app, *, threads: int | None = None):
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=threads or settings.EA_FAST_PATH_THREADS, thread_name_prefix="ea")

    async def __call__(self, scope, receive, send):
        path = scope.get("path")
        if scope["type"] != "http" or not settings.EA_FAST_PATH or path not in (*HEARTBEAT_PATHS, POLL_PATH, ACK_PATH):
            return await self.app(scope, receive, send)
        if not scope_host_allowed(scope):
            return await _respond(send, *BAD_HOST)
        method = scope["method"]
        if path in HEARTBEAT_PATHS and method != "POST":
            answer = (405, error_body("method_not_allowed", f'Method "{method}" not allowed.'), [])
            return await _respond(send, *answer)
        if path == POLL_PATH and (method != "GET" or not settings.REDIS_URL):
            return await self.app(scope, receive, send)  # DRF's 405 after authentication; the database poll
        if path == ACK_PATH and method != "POST":
            return await self.app(scope, receive, send)
        try:
            answer = await (self.poll(scope, receive) if path == POLL_PATH else self.post(path, scope, receive))
        except Exception as exc:
            answer = edge.UNAVAILABLE if unavailable(exc) else edge.SERVER_ERROR
            if answer is edge.SERVER_ERROR:
                logger.exception("EA %s failed", path)
        if answer is not None:  # None: the client hung up
            await _respond(send, *answer)

    def _thread(self, work, *args):
        return asyncio.get_running_loop().run_in_executor(self.pool, work, *args)

    async def post(self, path: str, scope, receive):
        """Count the throttle (a known token on the loop, any other in a thread), read the body, answer."""
        headers = dict(scope.get("headers", ()))
        token, ip = edge.token_of(headers), scope_client_ip(scope)
        heartbeat = path in HEARTBEAT_PATHS
        client = None
        counted = await edge.admit_known(token) if heartbeat and settings.REDIS_URL else None
        if counted is False:
            return edge.THROTTLED
        if counted is None:
            client = await self._thread(edge.admit, token, ip)
            if isinstance(client, tuple):
                return client
        body = await _read_body(receive, headers)
        if not isinstance(body, bytes):
            return body
        if heartbeat and client is None:
            answer = await edge.beat_on_loop(self.pool, token, body)
            if answer is not None:
                return answer
        return await self._thread(edge.beat if heartbeat else edge.ack, token, ip, body, client)

    async def poll(self, scope, receive):
        body = await _read_body(receive, {})  # a GET body is ignored, as Django does
        if not isinstance(body, bytes):
            return body
        token, ip = edge.token_of(dict(scope.get("headers", ()))), scope_client_ip(scope)
        opened = await self._thread(edge.poll_open, token, ip, scope.get("query_string", b""))
        if isinstance(opened, tuple):
            return opened
        commands = []
        if opened.allowed:
            account_id = opened.client.account_id

            def deliver():
                return self._thread(edge.deliver, account_id, opened.limit)

            hung_up = asyncio.get_running_loop().create_task(_disconnected(receive))
            try:
                commands = await edge.wait_for_commands(account_id, opened.wait, deliver, hung_up)
            finally:
                hung_up.cancel()
            if commands is None:
                return None
        return 200, pipeline.poll_reply(allowed=opened.allowed, reason=opened.reason, commands=commands), []


async def _read_body(receive, headers: dict[bytes, bytes]):
    """The body, under ``EA_MAX_BODY_BYTES`` (Content-Length checked first): bytes, the 413 answer, or None when the
    client hung up."""
    limit = settings.EA_MAX_BODY_BYTES
    declared = headers.get(b"content-length", b"0")
    if declared.isdigit() and int(declared) > limit:
        return TOO_LARGE
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return TOO_LARGE
        if not message.get("more_body"):
            return b"".join(chunks)


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _respond(send, status: int, payload: dict, extra: list | None = None) -> None:
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
