"""Schemathesis over the whole OpenAPI schema: generated and malformed input never gets a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from config.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def auth_header(owned_account) -> dict[str, str]:
    from accounts.jwt import jwt_issue

    return {"Authorization": f"Bearer {jwt_issue(user=owned_account.owner)['access']}"}


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_with_a_server_error(case, auth_header, keep_db_connection):
    response = case.call_and_validate(headers=auth_header, checks=[not_a_server_error])
    assert response.status_code < 500
    if response.status_code >= 400 and response.headers.get("Content-Type", "").startswith("application/json"):
        assert "error" in response.json()
