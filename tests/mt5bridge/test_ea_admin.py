"""Admin pages of the EA protocol: lists render, filters work, cancel/retry actions call the services."""

from __future__ import annotations

import pytest

from mt5bridge import commands as cq
from mt5bridge.ea.models import Command, EAToken
from mt5bridge.ea.services import ea_token_issue

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, super_admin):
    client.force_login(super_admin)
    return client


@pytest.mark.parametrize("page", ["command", "eatoken", "eaconnection"])
def test_admin_lists_render_with_filters(admin_client, owned_account, page):
    ea_token_issue(account=owned_account)
    cq.command_enqueue(account_id=owned_account.pk, kind="close_all", params={}, origin="admin")
    query = {"command": "?status=pending&origin=admin", "eatoken": "", "eaconnection": "?connection=offline"}[page]
    response = admin_client.get(f"/admin/mt5bridge/{page}/{query}")
    assert response.status_code == 200


def test_admin_cancel_then_retry_actions(admin_client, owned_account):
    command = cq.command_enqueue(account_id=owned_account.pk, kind="close_all", params={}, origin="admin")
    url = "/admin/mt5bridge/command/"
    admin_client.post(url, {"action": "cancel_commands", "_selected_action": [str(command.id)]})
    command.refresh_from_db()
    assert command.status == "cancelled"
    admin_client.post(url, {"action": "retry_commands", "_selected_action": [str(command.id)]})
    assert Command.objects.filter(retry_of=command, status="pending").count() == 1


def test_admin_revoke_action_revokes_the_token(admin_client, owned_account):
    ea_token_issue(account=owned_account)
    token = EAToken.objects.get(account=owned_account)
    admin_client.post("/admin/mt5bridge/eatoken/", {"action": "revoke_tokens", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_admin_command_list_is_restricted_for_a_trader(client, outsider, owned_account):
    cq.command_enqueue(account_id=owned_account.pk, kind="close_all", params={}, origin="admin")
    outsider.is_staff = True
    outsider.save()
    client.force_login(outsider)
    response = client.get("/admin/mt5bridge/command/")
    assert response.status_code in (200, 403)
    if response.status_code == 200:
        assert str(owned_account.login) not in response.content.decode()
