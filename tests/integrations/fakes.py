"""Local HTTP servers on 127.0.0.1 for the integration tests: a fake Systeme.io API and a webhook receiver.

The Systeme.io fake speaks the public API's wire format: ``/api/...`` paths, the ``X-API-Key`` header (401 when
wrong), ``{"items": [...], "hasMore": ...}`` lists with a 10..100 ``limit``, PATCH only as
``application/merge-patch+json`` (415 otherwise), 201/204 status codes, and 429/5xx answers queued by a test.
"""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class _Server:
    def __init__(self, handler_class: type[BaseHTTPRequestHandler], port: int = 0):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler_class)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> _Server:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    @property
    def owner(self):
        return self.server.owner  # type: ignore[attr-defined]

    def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        raw = self._body()
        parts = urlsplit(self.path)
        record = {
            "method": method,
            "path": parts.path,
            "query": parse_qs(parts.query),
            "headers": dict(self.headers),
            "body": raw,
        }
        with self.owner.lock:
            self.owner.requests.append(record)
        self.owner.handle(self, method, parts.path, parse_qs(parts.query), raw)


# --- Systeme.io -------------------------------------------------------------------------------------------


class FakeSysteme(_Server):
    def __init__(self, api_key: str = "test-systeme-key"):
        super().__init__(_Handler)
        self.api_key = api_key
        self.ids = itertools.count(1001)
        self.contacts: dict[int, dict[str, Any]] = {}
        self.tags: dict[int, dict[str, Any]] = {}
        self.field_slugs: list[str] = []
        self.faults: list[tuple[int, dict[str, str]]] = []  # answered first, one per request

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        self.faults.extend([(status, headers or {})] * times)

    def add_tag(self, name: str) -> dict[str, Any]:
        tag = {"id": next(self.ids), "name": name}
        self.tags[tag["id"]] = tag
        return tag

    def contact_by_email(self, email: str) -> dict[str, Any] | None:
        return next((c for c in self.contacts.values() if c["email"] == email), None)

    def calls(self, method: str, path_start: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and r["path"].startswith(path_start)]

    def handle(self, h: _Handler, method: str, path: str, query: dict, raw: bytes) -> None:
        with self.lock:
            fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            return h._reply(fault[0], {"message": "injected"}, fault[1])
        if h.headers.get("X-API-Key") != self.api_key:
            return h._reply(401, {"message": "Invalid API key"})
        if not path.startswith("/api/"):
            return h._reply(404, {"message": "not found"})
        segments = path[len("/api/") :].strip("/").split("/")
        body = json.loads(raw) if raw else {}
        if method == "PATCH" and h.headers.get("Content-Type") != "application/merge-patch+json":
            return h._reply(415, {"message": "The content-type is not supported."})
        limit = query.get("limit", ["10"])[0]
        if method == "GET" and not (limit.isdigit() and 10 <= int(limit) <= 100):
            return h._reply(422, {"violations": [{"propertyPath": "limit", "message": "between 10 and 100"}]})
        with self.lock:
            return self._route(h, method, segments, query, body)

    def _page(self, items: list[dict], query: dict) -> dict:
        after = query.get("startingAfter", [None])[0]
        if after is not None:
            items = [i for i in items if i["id"] > int(after)]
        limit = int(query.get("limit", ["10"])[0])
        return {"items": items[:limit], "hasMore": len(items) > limit}

    def _route(self, h: _Handler, method: str, seg: list[str], query: dict, body: dict) -> None:
        if seg == ["contacts"] and method == "GET":
            items = sorted(self.contacts.values(), key=lambda c: c["id"])
            if "email" in query:
                items = [c for c in items if c["email"] == query["email"][0]]
            return h._reply(200, self._page(items, query))
        if seg == ["contacts"] and method == "POST":
            if not body.get("email") or self.contact_by_email(body["email"]):
                return h._reply(422, {"violations": [{"propertyPath": "email", "message": "already used"}]})
            bad = [f["slug"] for f in body.get("fields", []) if f["slug"] not in self.field_slugs]
            if bad:
                return h._reply(422, {"violations": [{"propertyPath": "fields", "message": f"unknown {bad}"}]})
            contact = {
                "id": next(self.ids),
                "email": body["email"],
                "locale": body.get("locale"),
                "fields": [{"slug": f["slug"], "value": f["value"]} for f in body.get("fields", [])],
                "tags": [],
            }
            self.contacts[contact["id"]] = contact
            return h._reply(201, contact)
        if len(seg) >= 2 and seg[0] == "contacts":
            contact = self.contacts.get(int(seg[1])) if seg[1].isdigit() else None
            if contact is None:
                return h._reply(404, {"message": "Contact not found"})
            if len(seg) == 2 and method == "GET":
                return h._reply(200, contact)
            if len(seg) == 2 and method == "PATCH":
                for item in body.get("fields", []):
                    if item["slug"] not in self.field_slugs:
                        return h._reply(422, {"violations": [{"propertyPath": "fields", "message": "unknown"}]})
                    existing = next((f for f in contact["fields"] if f["slug"] == item["slug"]), None)
                    if existing is None:
                        contact["fields"].append({"slug": item["slug"], "value": item["value"]})
                    else:
                        existing["value"] = item["value"]
                return h._reply(200, contact)
            if len(seg) == 3 and seg[2] == "tags" and method == "POST":
                tag = self.tags.get(int(body.get("tagId", 0)))
                if tag is None:
                    return h._reply(422, {"message": "tag not found"})
                if tag not in contact["tags"]:
                    contact["tags"].append(tag)
                return h._reply(204)
            if len(seg) == 4 and seg[2] == "tags" and method == "DELETE":
                tag = self.tags.get(int(seg[3]))
                if tag is None or tag not in contact["tags"]:
                    return h._reply(404, {"message": "not tagged"})
                contact["tags"].remove(tag)
                return h._reply(204)
        if seg == ["contact_fields"] and method == "GET":
            items = [{"id": i + 1, "slug": slug, "fieldName": slug} for i, slug in enumerate(self.field_slugs)]
            return h._reply(200, self._page(items, query))
        if seg == ["tags"] and method == "GET":
            return h._reply(200, self._page(sorted(self.tags.values(), key=lambda t: t["id"]), query))
        if seg == ["tags"] and method == "POST":
            if not body.get("name"):
                return h._reply(422, {"message": "name required"})
            return h._reply(201, self.add_tag(body["name"]))
        return h._reply(404, {"message": "no route"})


# --- Webhook receiver ---------------------------------------------------------------------------------------


class WebhookReceiver(_Server):
    """Answers every POST with ``status`` (200 by default); keeps what it got."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(_Handler, port)
        self.status = 200

    def handle(self, h: _Handler, method: str, path: str, query: dict, raw: bytes) -> None:
        h._reply(self.status, {"ok": self.status < 300})
