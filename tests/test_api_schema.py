"""Schemathesis over the whole OpenAPI schema, as a trader, a staff role and an EA token.

Generated and malformed input never gets a 5xx, and every answer is one the schema documents: its status
code, its content type and its body (schemathesis' status_code, content_type and response_schema
conformance checks). Error answers carry the one JSON error body.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.choices import Role
from accounts.jwt import jwt_issue
from config.wsgi import application
from mt5bridge.ea.services import ea_token_issue
from tests.personas import staff_user

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SETTINGS = {"deadline": None, "suppress_health_check": list(HealthCheck)}


def bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt_issue(user=user)['access']}"}


def call_and_check(case, headers: dict[str, str]) -> None:
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    if response.status_code >= 400 and response.headers.get("Content-Type", "").startswith("application/json"):
        assert "error" in response.json(), response.text


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=15, **SETTINGS)
def test_every_answer_to_a_trader_is_documented(case, owned_account, keep_db_connection):
    call_and_check(case, bearer(owned_account.owner))


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=5, **SETTINGS)
def test_every_answer_to_a_support_agent_is_documented(case, owned_account, keep_db_connection):
    call_and_check(case, bearer(staff_user(Role.SUPPORT_AGENT)))


@pytest.mark.django_db
@schema.include(path_regex="^/api/ea/").parametrize()
@settings(max_examples=15, **SETTINGS)
def test_every_answer_to_an_ea_token_is_documented(case, owned_account, keep_db_connection):
    call_and_check(case, {"Authorization": f"Bearer {ea_token_issue(account=owned_account)}"})
