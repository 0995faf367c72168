"""The heartbeat's lean ASGI path: ``POST /api/ea/heartbeat`` without Django's middleware stack and DRF.

Thousands of EAs beat every second, and a steady-state beat touches Redis only; running it through
session, CSRF, message, locale and DRF machinery cost more than the beat itself. This ASGI layer sits in
front of Django (``config/asgi.py``), reads the body with the same size cap, and calls the same service
functions as the DRF view in ``mt5bridge.ea.api`` (token auth, wrong-token limit per IP, per-account throttle,
``heartbeat_process``) in a small thread pool, answering with the same JSON bodies and status codes. Every
other request, and the heartbeat itself when ``EA_FAST_PATH`` is off, goes to Django unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections

from config.errors import error_body
from mt5bridge.ea import services
from mt5bridge.ea.protocol import ProtocolError

logger = logging.getLogger(__name__)

PATHS = frozenset({"/api/ea/heartbeat", "/api/ea/heartbeat/"})


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, headers: list | None = None):
        self.status, self.code, self.message, self.headers = status, code, message, headers or []


def _headers(scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", [])}


def _token(headers: dict[bytes, bytes]) -> str | None:
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get(b"x-ea-token", b"").decode("latin-1") or None


def beat(token: str | None, ip: str, body: bytes) -> tuple[int, dict, list]:
    """Authenticate, throttle and process one heartbeat (runs in a worker thread, like a sync Django view)."""
    close_old_connections()
    try:
        if not token:
            raise _Refused(
                401, "not_authenticated", "An EA token is required (Authorization: Bearer <token>).", _CHALLENGE
            )
        client = services.ea_authenticate(token)
        if client is None:
            if not services.bad_token_allows(ip):
                raise _Refused(429, "throttled", "Too many wrong EA tokens from this address.")
            raise _Refused(401, "authentication_failed", "The EA token is wrong or has been revoked.", _CHALLENGE)
        if not services.ea_throttle_allows(client):
            raise _Refused(
                429, "throttled", "Request was throttled. Expected available in 1 second.", [(b"retry-after", b"1")]
            )
        try:
            return 200, services.heartbeat_process(client=client, body=body), []
        except ProtocolError as exc:
            return 400, error_body("protocol_error", exc.message, {"field": exc.field}), []
    except _Refused as exc:
        return exc.status, error_body(exc.code, exc.message), exc.headers
    finally:
        close_old_connections()


_CHALLENGE = [(b"www-authenticate", b'Bearer realm="ea"')]


class EAFastPath:
    """ASGI middleware: serve the heartbeat itself, pass everything else to ``app``."""

    def __init__(self, app, *, threads: int | None = None):
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=threads or settings.EA_FAST_PATH_THREADS, thread_name_prefix="ea")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in PATHS or not settings.EA_FAST_PATH:
            return await self.app(scope, receive, send)
        if scope["method"] != "POST":
            return await _respond(
                send, 405, error_body("method_not_allowed", f'Method "{scope["method"]}" not allowed.')
            )
        headers = _headers(scope)
        limit = settings.EA_MAX_BODY_BYTES
        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            return await _respond(send, 413, _too_large())
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await _respond(send, 413, _too_large())
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        ip = (scope.get("client") or ("", 0))[0]
        loop = asyncio.get_running_loop()
        try:
            status, payload, extra = await loop.run_in_executor(self.pool, beat, _token(headers), ip, b"".join(chunks))
        except Exception:
            logger.exception("heartbeat failed")
            status, payload, extra = 500, error_body("server_error", "Server error."), []
        await _respond(send, status, payload, extra)


def _too_large() -> dict:
    return error_body("too_large", "The body is larger than the protocol allows.")


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
