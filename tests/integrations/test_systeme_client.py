"""The Systeme.io client against the fake server on 127.0.0.1 (wire format, retries, errors)."""

from __future__ import annotations

import pytest

from integrations.systeme import (
    SystemeAuthError,
    SystemeClient,
    SystemeUnavailable,
    retry_delay,
)

KEY = "test-systeme-key"


@pytest.fixture
def waits():
    return []


@pytest.fixture
def client(fake_systeme, waits):
    with SystemeClient(KEY, base_url=fake_systeme.url, retries=3, sleep=waits.append) as c:
        yield c


def test_create_then_find_contact_by_email_sends_the_api_key(client, fake_systeme):
    created = client.create_contact("ann@example.com", fields={"mt5_balance": "100.00"}, locale="en")
    found = client.find_contact_by_email("ann@example.com")
    assert found == created
    assert found.fields == {"mt5_balance": "100.00"}
    assert all(r["headers"]["X-API-Key"] == KEY for r in fake_systeme.requests)
    assert fake_systeme.calls("POST", "/api/contacts")[0]["path"] == "/api/contacts"


def test_unknown_email_is_none(client):
    assert client.find_contact_by_email("nobody@example.com") is None


def test_update_is_a_merge_patch_that_keeps_other_fields(client, fake_systeme):
    contact = client.create_contact("bob@example.com", fields={"mt5_balance": "1", "mt5_equity": "2"})
    updated = client.set_contact_fields(contact.id, {"mt5_equity": "3"})
    assert updated.fields == {"mt5_balance": "1", "mt5_equity": "3"}
    patch = fake_systeme.calls("PATCH", f"/api/contacts/{contact.id}")[0]
    assert patch["headers"]["Content-Type"] == "application/merge-patch+json"


def test_tags_are_listed_created_added_and_removed(client, fake_systeme):
    contact = client.create_contact("cy@example.com")
    tag = client.ensure_tag("vip")
    assert client.ensure_tag("vip") == tag  # found, not created twice
    assert [t.name for t in client.list_tags()] == ["vip"]
    client.add_tag(contact.id, tag.id)
    assert [t.name for t in client.get_contact(contact.id).tags] == ["vip"]
    client.remove_tag(contact.id, tag.id)
    client.remove_tag(contact.id, tag.id)  # already gone: not an error
    assert client.get_contact(contact.id).tags == ()


def test_listing_follows_the_cursor_over_several_pages(client, fake_systeme):
    for n in range(130):
        fake_systeme.add_tag(f"t{n}")
    assert len(client.list_tags()) == 130
    assert len(fake_systeme.calls("GET", "/api/tags")) == 2


def test_custom_contact_fields_are_listed_by_slug(client, fake_systeme):
    assert [f.slug for f in client.list_contact_fields()][:2] == ["mt5_balance", "mt5_equity"]


def test_429_is_retried_after_the_retry_after_header(client, fake_systeme, waits):
    fake_systeme.fail_next(429, headers={"Retry-After": "2"})
    assert client.find_contact_by_email("x@example.com") is None
    assert waits == [2.0]


def test_5xx_is_retried_with_growing_backoff(client, fake_systeme, waits):
    fake_systeme.fail_next(503, times=2)
    client.list_tags()
    assert waits == [0.5, 1.0]


def test_persistent_server_errors_raise_unavailable_after_the_retries(client, fake_systeme, waits):
    fake_systeme.fail_next(500, times=10)
    with pytest.raises(SystemeUnavailable, match="after 3 retries"):
        client.list_tags()
    assert len(waits) == 3


def test_a_wrong_api_key_is_a_clear_auth_error(fake_systeme):
    with SystemeClient("wrong", base_url=fake_systeme.url, sleep=lambda s: None) as bad:
        with pytest.raises(SystemeAuthError, match="refused the API key") as caught:
            bad.ping()
    assert "wrong" not in str(caught.value)


def test_no_api_key_is_refused_before_any_request():
    with pytest.raises(SystemeAuthError, match="No Systeme.io API key"):
        SystemeClient("")


def test_unreachable_server_is_unavailable():
    with SystemeClient(KEY, base_url="http://127.0.0.1:9", retries=1, sleep=lambda s: None) as c:
        with pytest.raises(SystemeUnavailable, match="could not be reached"):
            c.ping()


def test_retry_delay_prefers_retry_after_and_caps_it():
    assert retry_delay(1, "5") == 5.0
    assert retry_delay(1, "500", cap=30) == 30
    assert retry_delay(3, None) == 2.0
    assert retry_delay(1, "not-a-date") == 0.5
