"""People's API auth: JWT login, refresh with rotation, logout, the retired Token header, and what stays apart."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken

from tests.personas import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN, REFRESH, LOGOUT, ME = "/api/auth/login", "/api/auth/refresh", "/api/auth/logout", "/api/auth/me"


def login(client: APIClient, user) -> dict:
    response = client.post(LOGIN, {"email": user.email, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def assert_clear_401(response, code: str) -> dict:
    assert response.status_code == 401, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    return error


def test_login_returns_an_access_token_for_an_hour_and_a_refresh_token(owner, anon_client):
    body = login(anon_client, owner)
    assert set(body) == {"access", "refresh", "access_expires_at", "user"}
    assert body["user"]["email"] == owner.email
    left = datetime.fromisoformat(body["access_expires_at"]) - datetime.now(UTC)
    assert timedelta(minutes=59) < left <= timedelta(minutes=60)
    assert bearer(body["access"]).get(ME).json()["email"] == owner.email


def test_the_refresh_token_is_not_an_access_token(owner, anon_client):
    body = login(anon_client, owner)
    assert_clear_401(bearer(body["refresh"]).get(ME), "token_not_valid")


def test_refresh_rotates_and_a_used_refresh_token_is_refused(owner, anon_client):
    first = login(anon_client, owner)
    response = anon_client.post(REFRESH, {"refresh": first["refresh"]}, format="json")
    assert response.status_code == 200, response.content
    second = response.json()
    assert second["refresh"] != first["refresh"] and second["access"] != first["access"]
    assert bearer(second["access"]).get(ME).status_code == 200
    # Replaying the old refresh token (a stolen copy, say) is refused; the new one still works once.
    assert_clear_401(anon_client.post(REFRESH, {"refresh": first["refresh"]}, format="json"), "token_not_valid")
    assert anon_client.post(REFRESH, {"refresh": second["refresh"]}, format="json").status_code == 200


def test_refresh_works_when_the_caller_still_sends_an_expired_access_token(owner, anon_client):
    """The refresh token is the credential: a stale Authorization header must not turn refresh into a 401."""
    body = login(anon_client, owner)
    expired = AccessToken.for_user(owner)
    expired.set_exp(lifetime=timedelta(seconds=-1))
    response = bearer(str(expired)).post(REFRESH, {"refresh": body["refresh"]}, format="json")
    assert response.status_code == 200, response.content


def test_logout_blacklists_the_refresh_token(owner, anon_client):
    body = login(anon_client, owner)
    client = bearer(body["access"])
    assert client.post(LOGOUT, {"refresh": body["refresh"]}, format="json").status_code == 204
    assert_clear_401(anon_client.post(REFRESH, {"refresh": body["refresh"]}, format="json"), "token_not_valid")


def test_logout_cannot_revoke_someone_elses_refresh_token(owner, outsider, anon_client):
    theirs = login(anon_client, owner)
    mine = login(APIClient(), outsider)
    response = bearer(mine["access"]).post(LOGOUT, {"refresh": theirs["refresh"]}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "not_your_token"
    assert anon_client.post(REFRESH, {"refresh": theirs["refresh"]}, format="json").status_code == 200


def test_logout_needs_a_refresh_token(owner, anon_client):
    body = login(anon_client, owner)
    response = bearer(body["access"]).post(LOGOUT, {}, format="json")
    assert response.status_code == 400 and "refresh" in response.json()["error"]["details"]


def test_an_old_api_token_header_gets_a_clear_401_saying_to_log_in_again(owner_client):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b")
    error = assert_clear_401(client.get(ME), "token_scheme_retired")
    assert "/api/auth/login" in error["message"] and "Bearer" in error["message"]
    assert client.get("/api/accounts").status_code == 401


@pytest.mark.parametrize(
    "header",
    [
        "Bearer not-a-jwt",
        "Bearer 0c5e4d1e-3c1b-4c43-9b5e-8a6f2f0b7d21",  # an EA token is not a person's token
        "Bearer a.b.c",
        "Bearer",
        "Bearer one two",
    ],
)
def test_bad_bearer_credentials_on_people_endpoints_are_401_not_500(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/accounts")
    assert response.status_code == 401, response.content
    assert response.json()["error"]["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_real_ea_token_is_refused_on_people_endpoints(owned_account):
    from mt5bridge.ea.services import ea_token_issue

    response = bearer(ea_token_issue(account=owned_account)).get("/api/accounts")
    assert_clear_401(response, "token_not_valid")


def test_an_expired_access_token_is_refused_with_a_hint_to_refresh(owner):
    expired = AccessToken.for_user(owner)
    expired.set_exp(lifetime=timedelta(seconds=-1))
    error = assert_clear_401(bearer(str(expired)).get(ME), "token_not_valid")
    assert "/api/auth/refresh" in error["message"]


def test_a_password_change_ends_every_token_issued_before_it(owner, anon_client):
    body = login(anon_client, owner)
    owner.set_password("a-brand-new-password-77")
    owner.save()
    assert bearer(body["access"]).get(ME).status_code == 401
    assert_clear_401(anon_client.post(REFRESH, {"refresh": body["refresh"]}, format="json"), "password_changed")


def test_a_deactivated_or_deleted_person_cannot_refresh(owner, outsider, anon_client):
    """simplejwt's own refresh serializer raised DoesNotExist (a 500) for a deleted user."""
    kept, gone = login(anon_client, owner), login(APIClient(), outsider)
    owner.is_active = False
    owner.save()
    outsider.delete()
    for body in (kept, gone):
        assert_clear_401(anon_client.post(REFRESH, {"refresh": body["refresh"]}, format="json"), "token_not_valid")
    assert bearer(kept["access"]).get(ME).status_code == 401


def test_garbage_refresh_tokens_are_401(db, anon_client):
    for value in ("nope", "a.b.c", "x" * 500):
        assert_clear_401(anon_client.post(REFRESH, {"refresh": value}, format="json"), "token_not_valid")


def test_refresh_tokens_are_stored_only_as_a_hash(owner, anon_client):
    body = login(anon_client, owner)
    rotated = anon_client.post(REFRESH, {"refresh": body["refresh"]}, format="json").json()
    stored = list(OutstandingToken.objects.values_list("token", flat=True))
    assert len(stored) == 2
    assert body["refresh"] not in stored and rotated["refresh"] not in stored
    assert "sha256:" + hashlib.sha256(rotated["refresh"].encode()).hexdigest() in stored


def test_the_login_keeps_the_auth_throttle(owner, anon_client, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, "auth": "2/min"})
    codes = [
        anon_client.post(LOGIN, {"email": owner.email, "password": PASSWORD}, format="json").status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]


def test_the_web_apps_session_still_authenticates_api_calls(owner):
    from django.test import Client

    client = Client()
    client.force_login(owner, backend="accounts.backends.ModelBackend")
    assert client.get(ME).json()["email"] == owner.email


def test_drf_api_tokens_are_gone(client, super_admin):
    assert not apps.is_installed("rest_framework.authtoken")
    client.force_login(super_admin, backend="accounts.backends.ModelBackend")
    assert client.get("/admin/authtoken/token/").status_code == 404


def test_the_openapi_schema_describes_bearer_auth(owner_client):
    schema = owner_client.get("/api/schema/", {"format": "json"}).json()
    scheme = schema["components"]["securitySchemes"]["jwtAuth"]
    assert scheme == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert {"jwtAuth": []} in schema["paths"]["/api/auth/me"]["get"]["security"]
    assert "tokenAuth" not in schema["components"]["securitySchemes"]
    login_200 = schema["paths"]["/api/auth/login"]["post"]["responses"]["200"]
    ref = login_200["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert {"access", "refresh", "user"} <= set(schema["components"]["schemas"][ref]["properties"])


def test_jwt_lifetimes_come_from_the_environment():
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup();"
        "from django.conf import settings as s; j = s.SIMPLE_JWT;"
        "print(j['ACCESS_TOKEN_LIFETIME'].total_seconds(), j['REFRESH_TOKEN_LIFETIME'].days)"
    )
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "DEBUG": "true", "JWT_ACCESS_MINUTES": "15", "JWT_REFRESH_DAYS": "2"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["900.0", "2"]


def test_the_upgrade_drops_the_old_token_table_and_its_clear_keys(db):
    """Removing the authtoken app alone would leave every old key in clear in authtoken_token."""
    from importlib import import_module

    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id bigint)")
        cursor.execute("INSERT INTO authtoken_token VALUES ('9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b', 1)")
    ContentType.objects.create(app_label="authtoken", model="token")

    migration = import_module("accounts.migrations.0004_drop_api_token_table")
    with connection.schema_editor() as editor:
        migration.drop_api_tokens(apps, editor)
        migration.drop_api_tokens(apps, editor)  # idempotent: a fresh database never had the table

    assert "authtoken_token" not in connection.introspection.table_names()
    assert not ContentType.objects.filter(app_label="authtoken").exists()
