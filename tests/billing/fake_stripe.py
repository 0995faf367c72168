"""A fake Stripe API on 127.0.0.1 that answers in Stripe's wire format (objects, lists, errors).

It keeps objects in memory by id, creates customers, Checkout and Portal sessions, cancels
and updates subscriptions, and records every request so tests can assert what was sent.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

COLLECTIONS = {
    "customers": "customer",
    "subscriptions": "subscription",
    "prices": "price",
    "products": "product",
    "subscription_items": "subscription_item",
    "invoices": "invoice",
    "events": "event",
    "payment_methods": "payment_method",
    "checkout/sessions": "checkout.session",
    "billing_portal/sessions": "billing_portal.session",
    "webhook_endpoints": "webhook_endpoint",
}


def parse_form(body: str) -> dict:
    """Stripe's form encoding (``a[b][0][c]=v``) back into nested dicts and lists."""
    result: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(result)


def _lists(node):
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_lists(node[k]) for k in sorted(node, key=int)]
        return {k: _lists(v) for k, v in node.items()}
    return node


def error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str = "resource_missing",
    param: str = "id",
) -> tuple[int, dict]:
    return status, {"error": {"type": type_, "code": code, "message": message, "param": param}}


class FakeStripe:
    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self._ids = itertools.count(1)
        self.fail_next: tuple[int, dict] | None = None
        self.account = {
            "id": "acct_fakeplatform",
            "object": "account",
            "type": "standard",
            "country": "DE",
            "email": "billing@example.com",
            "charges_enabled": True,
            "payouts_enabled": True,
            "details_submitted": True,
            "default_currency": "usd",
            "livemode": False,
            "created": int(time.time()),
            "metadata": {},
            "settings": {"dashboard": {"display_name": "Fake platform"}},
            "business_profile": {"name": "Fake platform", "url": None},
            "capabilities": {},
        }
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeStripe:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- objects --------------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    def put(self, obj: dict) -> dict:
        self.objects[obj["id"]] = obj
        return obj

    def product(self, name: str) -> dict:
        return self.put(
            {
                "id": self.new_id("prod"),
                "object": "product",
                "name": name,
                "active": True,
                "livemode": False,
                "created": int(time.time()),
                "metadata": {},
                "type": "service",
                "description": None,
                "images": [],
                "url": None,
                "default_price": None,
            }
        )

    def price(self, product: dict, amount: int, interval: str = "month") -> dict:
        return self.put(
            {
                "id": self.new_id("price"),
                "object": "price",
                "product": product["id"],
                "active": True,
                "currency": "usd",
                "unit_amount": amount,
                "unit_amount_decimal": str(amount),
                "type": "recurring",
                "billing_scheme": "per_unit",
                "livemode": False,
                "created": int(time.time()),
                "metadata": {},
                "nickname": None,
                "lookup_key": None,
                "recurring": {
                    "interval": interval,
                    "interval_count": 1,
                    "usage_type": "licensed",
                    "aggregate_usage": None,
                    "trial_period_days": None,
                },
                "tax_behavior": "unspecified",
                "tiers_mode": None,
                "transform_quantity": None,
            }
        )

    def customer(self, *, email: str, metadata: dict | None = None, name: str | None = None) -> dict:
        return self.put(
            {
                "id": self.new_id("cus"),
                "object": "customer",
                "email": email,
                "name": name,
                "metadata": metadata or {},
                "livemode": False,
                "created": int(time.time()),
                "balance": 0,
                "currency": "usd",
                "delinquent": False,
                "description": None,
                "discount": None,
                "default_source": None,
                "invoice_prefix": "FAKE",
                "invoice_settings": {"default_payment_method": None, "custom_fields": None, "footer": None},
                "address": None,
                "phone": None,
                "preferred_locales": [],
                "shipping": None,
                "tax_exempt": "none",
            }
        )

    def subscription(
        self,
        *,
        customer: str,
        price: dict,
        status: str = "active",
        trial_end: int | None = None,
        metadata: dict | None = None,
        sub_id: str | None = None,
    ) -> dict:
        now = int(time.time())
        sub_id = sub_id or self.new_id("sub")
        item = {
            "id": self.new_id("si"),
            "object": "subscription_item",
            "subscription": sub_id,
            "price": price,
            "quantity": 1,
            "created": now,
            "metadata": {},
            "tax_rates": [],
            "billing_thresholds": None,
            "current_period_start": now,
            "current_period_end": now + 30 * 86400,
        }
        return self.put(
            {
                "id": sub_id,
                "object": "subscription",
                "customer": customer,
                "status": status,
                "livemode": False,
                "created": now,
                "start_date": now,
                "metadata": metadata or {},
                "items": {
                    "object": "list",
                    "data": [item],
                    "has_more": False,
                    "url": f"/v1/subscription_items?subscription={sub_id}",
                },
                "trial_start": now if trial_end else None,
                "trial_end": trial_end,
                "cancel_at_period_end": False,
                "canceled_at": None,
                "cancel_at": None,
                "ended_at": None,
                "collection_method": "charge_automatically",
                "default_payment_method": None,
                "default_source": None,
                "default_tax_rates": [],
                "discount": None,
                "latest_invoice": None,
                "pending_setup_intent": None,
                "pending_update": None,
                "schedule": None,
                "billing_cycle_anchor": now,
                "currency": "usd",
                "quantity": 1,
            }
        )

    def set_status(self, sub_id: str, status: str, **fields) -> dict:
        self.objects[sub_id].update(status=status, **fields)
        return self.objects[sub_id]

    def requests_to(self, method: str, path_prefix: str) -> list[tuple[str, str, dict]]:
        return [r for r in self.requests if r[0] == method and r[1].startswith(path_prefix)]

    # --- HTTP -----------------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict]:
        self.requests.append((method, path, body or query))
        if self.fail_next is not None:
            failure, self.fail_next = self.fail_next, None
            return failure
        if not path.startswith("/v1/"):
            return error(404, f"Unrecognized request URL ({method}: {path}).", code="url_invalid", param="")
        rest = path[len("/v1/") :]
        if rest == "account" and method == "GET":
            return 200, self.account
        for collection, kind in sorted(COLLECTIONS.items(), key=lambda kv: -len(kv[0])):
            if rest == collection:
                return self._collection(method, collection, kind, query, body)
            if rest.startswith(collection + "/"):
                tail = rest[len(collection) + 1 :].split("/")
                return self._member(method, kind, tail, body)
        return error(404, f"Unrecognized request URL ({method}: {path}).", code="url_invalid", param="")

    def _collection(self, method, collection, kind, query, body):
        if method == "GET":
            data = [
                o
                for o in self.objects.values()
                if o.get("object") == kind
                and all(
                    str(o.get(k)) == v
                    for k, v in query.items()
                    if k in ("customer", "subscription", "status") and v != "all"
                )
            ]
            return 200, {"object": "list", "data": data, "has_more": False, "url": f"/v1/{collection}"}
        if method != "POST":
            return error(405, "Method not allowed", code="method_not_allowed", param="")
        if kind == "customer":
            return 200, self.customer(email=body.get("email", ""), metadata=body.get("metadata"), name=body.get("name"))
        if kind == "checkout.session":
            if not body.get("line_items") or not body.get("success_url"):
                return error(400, "Missing required param: line_items.", code="parameter_missing", param="line_items")
            session_id = self.new_id("cs_test")
            return 200, self.put(
                {
                    "id": session_id,
                    "object": "checkout.session",
                    "mode": body.get("mode"),
                    "customer": body.get("customer"),
                    "url": f"https://checkout.stripe.test/{session_id}",
                    "client_reference_id": body.get("client_reference_id"),
                    "metadata": body.get("metadata", {}),
                    "subscription": None,
                    "livemode": False,
                    "status": "open",
                    "payment_status": "unpaid",
                    "created": int(time.time()),
                    "success_url": body.get("success_url"),
                    "cancel_url": body.get("cancel_url"),
                    "line_items_sent": body.get("line_items"),
                    "subscription_data_sent": body.get("subscription_data", {}),
                }
            )
        if kind == "billing_portal.session":
            if body.get("customer") not in self.objects:
                return error(400, f"No such customer: '{body.get('customer')}'", param="customer")
            session_id = self.new_id("bps")
            return 200, self.put(
                {
                    "id": session_id,
                    "object": "billing_portal.session",
                    "customer": body["customer"],
                    "return_url": body.get("return_url"),
                    "url": f"https://billing.stripe.test/p/session/{session_id}",
                    "livemode": False,
                    "created": int(time.time()),
                }
            )
        return error(400, f"The fake cannot create {kind}", code="parameter_invalid", param="")

    def _member(self, method, kind, tail, body):
        obj_id = tail[0]
        obj = self.objects.get(obj_id)
        if obj is None or obj.get("object") != kind:
            return error(404, f"No such {kind.split('.')[-1]}: '{obj_id}'")
        if len(tail) > 1:  # nested lists such as /v1/customers/cus_x/tax_ids
            return 200, {"object": "list", "data": [], "has_more": False, "url": "/v1/" + "/".join(tail)}
        if method == "GET":
            return 200, obj
        if method == "DELETE" and kind == "subscription":
            obj.update(status="canceled", canceled_at=int(time.time()), ended_at=int(time.time()))
            return 200, obj
        if method == "POST":
            obj.update({k: v for k, v in body.items() if k not in ("expand",)})
            return 200, obj
        return error(405, "Method not allowed", code="method_not_allowed", param="")

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                query = {k: v for k, v in parse_qsl(parts.query)}
                if not self.headers.get("Authorization", "").startswith("Bearer sk_"):
                    status, payload = error(
                        401, "Invalid API Key provided", type_="invalid_request_error", code="api_key_invalid", param=""
                    )
                else:
                    status, payload = fake.answer(method, parts.path, query, parse_form(raw))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Request-Id", f"req_fake{len(fake.requests)}")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def do_DELETE(self):
                self._serve("DELETE")

            def log_message(self, *args):
                pass

        return Handler
