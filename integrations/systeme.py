"""A typed httpx client for the Systeme.io public API: contacts, custom fields, tags, tagging."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

logger = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
PAGE_LIMIT = 100  # the API accepts 10..100


class SystemeError(Exception):
    """Systeme.io refused or failed a request. The message never holds the API key."""

    def __init__(self, message: str, *, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class SystemeAuthError(SystemeError):
    """The API key is missing or wrong (401/403)."""


class SystemeUnavailable(SystemeError):
    """Network error, 5xx or 429 that outlasted the retries. Worth trying again later."""


class SystemeNotFound(SystemeError):
    """The contact or tag does not exist."""


@dataclass(frozen=True)
class Tag:
    id: int
    name: str


@dataclass(frozen=True)
class ContactField:
    slug: str
    name: str = ""


@dataclass(frozen=True)
class Contact:
    id: int
    email: str
    fields: dict[str, Any] = field(default_factory=dict)
    tags: tuple[Tag, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Contact:
        fields = {
            str(item.get("slug")): item.get("value")
            for item in data.get("fields") or []
            if isinstance(item, Mapping) and item.get("slug")
        }
        tags = tuple(
            Tag(id=int(item["id"]), name=str(item.get("name", "")))
            for item in data.get("tags") or []
            if isinstance(item, Mapping) and "id" in item
        )
        return cls(id=int(data["id"]), email=str(data.get("email", "")), fields=fields, tags=tags)


def retry_delay(attempt: int, retry_after: str | None, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): Retry-After when given, else 0.5 s, 1 s, 2 s..."""
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), cap)
        except ValueError:
            try:
                moment = parsedate_to_datetime(retry_after)
                return min(max(moment.timestamp() - time.time(), 0.0), cap)
            except (TypeError, ValueError):
                pass
    return min(base * 2 ** (attempt - 1), cap)


def _fields_body(fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"slug": slug, "value": None if value is None else str(value)} for slug, value in fields.items()]


class SystemeClient:
    """Systeme.io over HTTPS with an ``X-API-Key`` header; retries 429 (honouring Retry-After) and 5xx."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.systeme.io",
        timeout: float = 10.0,
        retries: int = 3,
        max_wait: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not api_key:
            raise SystemeAuthError("No Systeme.io API key is configured (SYSTEME_API_KEY or the admin).")
        self._retries = retries
        self._max_wait = max_wait
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api",
            headers={"X-API-Key": api_key, "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SystemeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- contacts ---

    def find_contact_by_email(self, email: str) -> Contact | None:
        data = self._request("GET", "/contacts", params={"email": email, "limit": 10})
        for item in data.get("items") or []:
            if str(item.get("email", "")).lower() == email.lower():
                return Contact.from_json(item)
        return None

    def get_contact(self, contact_id: int) -> Contact:
        return Contact.from_json(self._request("GET", f"/contacts/{int(contact_id)}"))

    def create_contact(
        self, email: str, *, fields: Mapping[str, Any] | None = None, locale: str | None = None
    ) -> Contact:
        body: dict[str, Any] = {"email": email}
        if locale:
            body["locale"] = locale
        if fields:
            body["fields"] = _fields_body(fields)
        return Contact.from_json(self._request("POST", "/contacts", body=body))

    def update_contact(self, contact_id: int, changes: Mapping[str, Any]) -> Contact:
        """A merge patch: only the keys given change."""
        return Contact.from_json(
            self._request("PATCH", f"/contacts/{int(contact_id)}", body=dict(changes), content_type=MERGE_PATCH)
        )

    def set_contact_fields(self, contact_id: int, fields: Mapping[str, Any]) -> Contact:
        return self.update_contact(contact_id, {"fields": _fields_body(fields)})

    def list_contact_fields(self) -> list[ContactField]:
        return [
            ContactField(slug=str(item.get("slug")), name=str(item.get("fieldName") or item.get("name") or ""))
            for item in self._paginate("/contact_fields")
        ]

    # --- tags ---

    def list_tags(self) -> list[Tag]:
        return [Tag(id=int(item["id"]), name=str(item.get("name", ""))) for item in self._paginate("/tags")]

    def create_tag(self, name: str) -> Tag:
        data = self._request("POST", "/tags", body={"name": name})
        return Tag(id=int(data["id"]), name=str(data.get("name", name)))

    def ensure_tag(self, name: str) -> Tag:
        for tag in self.list_tags():
            if tag.name == name:
                return tag
        return self.create_tag(name)

    def add_tag(self, contact_id: int, tag_id: int) -> None:
        self._request("POST", f"/contacts/{int(contact_id)}/tags", body={"tagId": int(tag_id)})

    def remove_tag(self, contact_id: int, tag_id: int) -> None:
        try:
            self._request("DELETE", f"/contacts/{int(contact_id)}/tags/{int(tag_id)}")
        except SystemeNotFound:
            pass  # not tagged: the wanted state already holds

    def ping(self) -> None:
        """Raises SystemeAuthError for a wrong key, SystemeUnavailable when the API cannot be reached."""
        self._request("GET", "/tags", params={"limit": 10})

    # --- transport ---

    def _paginate(self, path: str) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        for _ in range(1000):  # a hard stop in case the server never says hasMore=false
            params: dict[str, Any] = {"limit": PAGE_LIMIT}
            if cursor:
                params["startingAfter"] = cursor
            data = self._request("GET", path, params=params)
            items = data.get("items") or []
            yield from items
            if not data.get("hasMore") or not items:
                return
            cursor = str(items[-1].get("id"))

    def _request(self, method: str, path: str, *, params=None, body=None, content_type: str | None = None) -> Any:
        headers = {"Content-Type": content_type or "application/json"}
        content = None if body is None else json.dumps(body).encode()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(method, path, params=params, content=content, headers=headers)
            except httpx.TransportError as exc:
                if attempt > self._retries:
                    raise SystemeUnavailable(f"Systeme.io could not be reached: {type(exc).__name__}") from None
                self._sleep(retry_delay(attempt, None, cap=self._max_wait))
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                if attempt > self._retries:
                    what = "rate limit (429)" if status == 429 else f"server error ({status})"
                    raise SystemeUnavailable(
                        f"Systeme.io {what} persisted after {self._retries} retries", status_code=status
                    )
                delay = retry_delay(attempt, response.headers.get("Retry-After"), cap=self._max_wait)
                logger.info("Systeme.io %s %s answered %s; retrying in %.1fs", method, path, status, delay)
                self._sleep(delay)
                continue
            if status in (401, 403):
                raise SystemeAuthError(
                    f"Systeme.io refused the API key (HTTP {status}). Check SYSTEME_API_KEY or the key in the admin.",
                    status_code=status,
                )
            if status == 404:
                raise SystemeNotFound(f"Systeme.io: {method} {path} not found", status_code=404)
            if status >= 400:
                raise SystemeError(
                    f"Systeme.io refused {method} {path} (HTTP {status}): {_detail(response)}", status_code=status
                )
            if status == 204 or not response.content:
                return {}
            try:
                return response.json()
            except ValueError:
                raise SystemeError(
                    f"Systeme.io answered {method} {path} with something that is not JSON", status_code=status
                ) from None


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, Mapping):
        for key in ("detail", "message", "title", "error"):
            if data.get(key):
                return str(data[key])[:200]
        if data.get("violations"):
            return "; ".join(f"{v.get('propertyPath')}: {v.get('message')}" for v in data["violations"])[:200]
    return str(data)[:200]
