"""API test mixins in the manner of NetBox's APIViewTestCases: a resource class declares, the mixins ask every persona.

A resource test class combines the mixins it needs with `APIResource` and declares its URLs, its model, a
factory (`make(owner)`), payloads and who may do what, as accounts.roles.MATRIX says:

- ``owned``: traders read and change the rows they own (scope OWN); an outsider gets 404 on another's row and
  does not see it in lists. A resource that is not owned is staff-only: a trader gets 403.
- ``readers`` / ``writers``: the staff personas (fixture names of tests.personas) that read / change every row
  (scope ALL); every other staff persona gets 403, and Read-Only is never a writer.

Each mixin checks what a caller cares about: 401 with the JSON error body without credentials, the answer's
fields, a created row readable back with the sent values and stored, an update that persists, a delete that
removes (a second one is a 404), lists of exactly the visible rows, and bad input refused with 400 and nothing
stored. ``known_gaps`` marks (operation, persona) cases where the product is known to differ from the matrix
as strict xfails, so fixing the product turns them into failures that ask for the mark to go.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from tests.personas import api_client_for

STAFF_PERSONAS = ("super_admin", "campaign_manager", "support_agent", "read_only")
PERSONAS = ("outsider", *STAFF_PERSONAS)
SUCCESS = {"get": 200, "list": 200, "create": 201, "update": 200, "delete": 204}
ERROR_CODES = {401: "not_authenticated", 403: "permission_denied", 404: "not_found"}
MISSING = object()


def same(sent: Any, got: Any) -> bool:
    """Whether a value read back is the one sent: numbers compared as decimals ("1.5" is 1.5000), ids as text."""
    if isinstance(sent, dict) and isinstance(got, dict):
        return sent.keys() == got.keys() and all(same(sent[key], got[key]) for key in sent)
    if isinstance(sent, list | tuple) and isinstance(got, list | tuple):
        return len(sent) == len(got) and all(same(a, b) for a, b in zip(sent, got, strict=True))
    if isinstance(sent, bool) or isinstance(got, bool) or sent is None or got is None:
        return sent == got
    try:
        return Decimal(str(sent)) == Decimal(str(got))
    except InvalidOperation:
        return str(sent) == str(got)


def assert_error(response, status: int) -> None:
    """The status, and the one JSON error body every endpoint answers with."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    error = response.json()["error"]
    assert error["message"]
    assert error["code"] == ERROR_CODES.get(status, error["code"])


class APIResource:
    """What a resource test class declares (see the module docstring)."""

    list_url: ClassVar[str]
    model: ClassVar[type]
    fields: ClassVar[frozenset[str]]  # the keys of one object's answer
    list_fields: ClassVar[frozenset[str] | None] = None  # the keys of a list row, when they differ
    write_only: ClassVar[frozenset[str]] = frozenset()  # sent, never answered (passwords, secrets)
    owned: ClassVar[bool] = True
    readers: ClassVar[tuple[str, ...]] = ("super_admin",)
    writers: ClassVar[tuple[str, ...]] = ("super_admin",)
    paginated: ClassVar[bool] = True
    update_method: ClassVar[str] = "patch"
    missing_pk: ClassVar[Any] = 987654321
    required: ClassVar[tuple[str, ...]] = ()  # create fields whose absence is a 400
    wrong_types: ClassVar[dict[str, Any]] = {}  # create field -> a value of the wrong type
    wrong_update_types: ClassVar[dict[str, Any] | None] = None  # the same for updates (default: wrong_types)
    known_gaps: ClassVar[dict[tuple[str, str], str]] = {}  # (operation, persona) -> why the product differs

    def detail_url(self, obj) -> str:
        return f"{self.list_url}/{obj.pk}"

    def make(self, owner):
        """One row owned by ``owner`` (for a staff-only resource: created by them)."""
        raise NotImplementedError

    def create_data(self, owner) -> dict:
        raise NotImplementedError

    def update_data(self, obj) -> dict:
        raise NotImplementedError

    def created(self, body: dict) -> dict:
        """The object in a create answer (most answer the object itself)."""
        return body

    # --- helpers -----------------------------------------------------------------------------

    def expected_status(self, operation: str, persona: str) -> int:
        allowed = self.readers if operation in ("get", "list") else self.writers
        if persona in allowed:
            return SUCCESS[operation]
        if persona == "outsider" and self.owned:
            return 200 if operation == "list" else 404  # another trader's rows do not exist for them
        return 403

    def rows(self, response) -> list[dict]:
        assert response.status_code == 200, response.content[:500]
        body = response.json()
        if not self.paginated:
            return body
        assert body["count"] == len(body["results"]) or body["next"]
        return body["results"]

    def stored(self, pk, keys) -> dict:
        return self.model.objects.filter(pk=pk).values(*keys).get()

    def snapshot(self, obj) -> dict:
        return self.model.objects.filter(pk=obj.pk).values().get()

    def assert_sent_values(self, sent: dict, body: dict, pk) -> None:
        """The answer and the stored row both carry the values sent (write-only ones are never answered)."""
        readable = {key: value for key, value in sent.items() if key not in self.write_only}
        assert set(body) == set(self.fields)
        assert not self.write_only & set(body)
        answered = {key: body[key] for key in readable}
        assert same(readable, answered), (readable, answered)
        stored = self.stored(pk, readable)
        assert same(readable, stored), (readable, stored)

    def bad_inputs(self, *, update: bool) -> list:
        cases = [] if update else [pytest.param((name, MISSING), id=f"without-{name}") for name in self.required]
        wrong = self.wrong_types if not update or self.wrong_update_types is None else self.wrong_update_types
        cases += [pytest.param((name, value), id=f"{name}-wrong-type") for name, value in wrong.items()]
        return cases

    # --- fixtures ----------------------------------------------------------------------------

    @pytest.fixture
    def actor(self, request):
        """Who creates and changes rows: their owner, or the first staff persona that writes them."""
        return request.getfixturevalue("owner" if self.owned else self.writers[0])

    @pytest.fixture
    def actor_client(self, actor):
        return api_client_for(actor)

    def pytest_generate_tests(self, metafunc):
        """Per-persona tests run for every persona (`known_gaps` marks what the product gets wrong); bad-input
        tests run for each required field left out and each field of the wrong type."""
        if "bad_input" in metafunc.fixturenames:
            metafunc.parametrize("bad_input", self.bad_inputs(update=False))
        if "bad_update" in metafunc.fixturenames:
            metafunc.parametrize("bad_update", self.bad_inputs(update=True))
        if "persona" not in metafunc.fixturenames:
            return
        operation = metafunc.function.__name__.split("_")[1]  # test_<operation>_...
        personas = [p for p in PERSONAS if not (operation == "create" and p == "outsider" and self.owned)]
        params = [
            pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=self.known_gaps[(operation, p)]))
            if (operation, p) in self.known_gaps
            else p
            for p in personas
        ]
        metafunc.parametrize("persona", params)


class GetObjectCases(APIResource):
    def test_get_object_anonymous(self, actor):
        obj = self.make(actor)
        assert_error(api_client_for(None).get(self.detail_url(obj)), 401)

    def test_get_object(self, actor, actor_client):
        obj = self.make(actor)
        body = actor_client.get(self.detail_url(obj)).json()
        assert str(body["id"]) == str(obj.pk)
        assert set(body) == set(self.fields), set(body) ^ set(self.fields)

    def test_get_object_that_does_not_exist(self, actor_client):
        assert_error(actor_client.get(self.detail_url(SimpleNamespace(pk=self.missing_pk))), 404)

    def test_get_object_per_persona(self, actor, persona, request):
        obj = self.make(actor)
        response = api_client_for(request.getfixturevalue(persona)).get(self.detail_url(obj))
        expected = self.expected_status("get", persona)
        if expected == 200:
            assert response.status_code == 200 and str(response.json()["id"]) == str(obj.pk)
        else:
            assert_error(response, expected)


class ListObjectsCases(APIResource):
    def test_list_objects_anonymous(self, actor):
        self.make(actor)
        assert_error(api_client_for(None).get(self.list_url), 401)

    def test_list_objects(self, actor, actor_client, outsider):
        mine = {str(self.make(actor).pk), str(self.make(actor).pk)}
        theirs = {str(self.make(outsider).pk)} if self.owned else set()
        rows = self.rows(actor_client.get(self.list_url))
        assert {str(row["id"]) for row in rows} == mine | (set() if self.owned else theirs)
        assert all(set(row) == set(self.list_fields or self.fields) for row in rows)

    def test_list_objects_per_persona(self, actor, persona, request):
        theirs = str(self.make(actor).pk)
        response = api_client_for(request.getfixturevalue(persona)).get(self.list_url)
        expected = self.expected_status("list", persona)
        if persona in self.readers:
            assert theirs in {str(row["id"]) for row in self.rows(response)}
        elif expected == 200:
            assert self.rows(response) == []
        else:
            assert_error(response, expected)


class PaginatedListCases(APIResource):
    def test_list_objects_is_paginated(self, actor, actor_client):
        made = {str(self.make(actor).pk) for _ in range(3)}
        first = actor_client.get(self.list_url, {"limit": 2}).json()
        assert first["count"] == 3 and len(first["results"]) == 2 and first["next"] and first["previous"] is None
        last = actor_client.get(self.list_url, {"limit": 2, "offset": 2}).json()
        assert len(last["results"]) == 1 and last["next"] is None
        assert {str(row["id"]) for row in first["results"] + last["results"]} == made


class CreateObjectCases(APIResource):
    def test_create_object_anonymous(self, actor):
        response = api_client_for(None).post(self.list_url, self.create_data(actor), format="json")
        assert_error(response, 401)
        assert not self.model.objects.exists()

    def test_create_object(self, actor, actor_client):
        sent = self.create_data(actor)
        response = actor_client.post(self.list_url, sent, format="json")
        assert response.status_code == 201, response.content[:500]
        body = self.created(response.json())
        self.assert_sent_values(sent, body, body["id"])
        assert actor_client.get(self.detail_url(SimpleNamespace(pk=body["id"]))).json() == body

    def test_create_object_per_persona(self, actor, persona, request):
        before = self.model.objects.count()
        response = api_client_for(request.getfixturevalue(persona)).post(
            self.list_url, self.create_data(actor), format="json"
        )
        expected = self.expected_status("create", persona)
        if expected == 201:
            assert response.status_code == 201, response.content[:500]
            assert self.model.objects.filter(pk=self.created(response.json())["id"]).exists()
        else:
            assert_error(response, expected)
            assert self.model.objects.count() == before

    def test_create_object_refuses_a_body_that_is_not_an_object(self, actor_client):
        assert_error(actor_client.post(self.list_url, ["not", "an", "object"], format="json"), 400)
        assert not self.model.objects.exists()

    def test_create_object_with_bad_input(self, actor, actor_client, bad_input):
        name, value = bad_input
        sent = self.create_data(actor)
        before = self.model.objects.count()
        if value is MISSING:
            del sent[name]
        else:
            sent[name] = value
        assert_error(actor_client.post(self.list_url, sent, format="json"), 400)
        assert self.model.objects.count() == before


class UpdateObjectCases(APIResource):
    def update(self, client, obj, data):
        return getattr(client, self.update_method)(self.detail_url(obj), data, format="json")

    def test_update_object_anonymous(self, actor):
        obj = self.make(actor)
        before = self.snapshot(obj)
        assert_error(self.update(api_client_for(None), obj, self.update_data(obj)), 401)
        assert self.snapshot(obj) == before

    def test_update_object(self, actor, actor_client):
        obj = self.make(actor)
        sent = self.update_data(obj)
        response = self.update(actor_client, obj, sent)
        assert response.status_code == 200, response.content[:500]
        self.assert_sent_values(sent, response.json(), obj.pk)
        assert actor_client.get(self.detail_url(obj)).json() == response.json()

    def test_update_object_per_persona(self, actor, persona, request):
        obj = self.make(actor)
        before = self.snapshot(obj)
        response = self.update(api_client_for(request.getfixturevalue(persona)), obj, self.update_data(obj))
        expected = self.expected_status("update", persona)
        if expected == 200:
            assert response.status_code == 200, response.content[:500]
            assert self.snapshot(obj) != before
        else:
            assert_error(response, expected)
            assert self.snapshot(obj) == before

    def test_update_object_refuses_a_body_that_is_not_an_object(self, actor, actor_client):
        obj = self.make(actor)
        before = self.snapshot(obj)
        assert_error(self.update(actor_client, obj, ["not", "an", "object"]), 400)
        assert self.snapshot(obj) == before

    def test_update_object_with_bad_input(self, actor, actor_client, bad_update):
        name, value = bad_update
        obj = self.make(actor)
        before = self.snapshot(obj)
        assert_error(self.update(actor_client, obj, {**self.update_data(obj), name: value}), 400)
        assert self.snapshot(obj) == before


class DeleteObjectCases(APIResource):
    def test_delete_object_anonymous(self, actor):
        obj = self.make(actor)
        assert_error(api_client_for(None).delete(self.detail_url(obj)), 401)
        assert self.model.objects.filter(pk=obj.pk).exists()

    def test_delete_object(self, actor, actor_client):
        obj = self.make(actor)
        assert actor_client.delete(self.detail_url(obj)).status_code == 204
        assert not self.model.objects.filter(pk=obj.pk).exists()
        assert_error(actor_client.get(self.detail_url(obj)), 404)
        assert_error(actor_client.delete(self.detail_url(obj)), 404)

    def test_delete_object_per_persona(self, actor, persona, request):
        obj = self.make(actor)
        response = api_client_for(request.getfixturevalue(persona)).delete(self.detail_url(obj))
        expected = self.expected_status("delete", persona)
        if expected == 204:
            assert response.status_code == 204
            assert not self.model.objects.filter(pk=obj.pk).exists()
        else:
            assert_error(response, expected)
            assert self.model.objects.filter(pk=obj.pk).exists()


class APIViewCases(GetObjectCases, ListObjectsCases, CreateObjectCases, UpdateObjectCases, DeleteObjectCases):
    """Every case: get, list, create, update, delete."""
