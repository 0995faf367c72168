"""Secrets at rest: encrypted, never readable from the row, rotatable to a new key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from accounts import vault
from accounts.models import TradingAccount
from tests.personas import SIM_PASSWORD


def test_encrypted_secret_does_not_contain_the_plaintext():
    token = vault.encrypt("hunter2-hunter2")
    assert b"hunter2" not in token
    assert vault.decrypt(token) == "hunter2-hunter2"


def test_a_secret_encrypted_under_an_unknown_key_is_reported_unreadable(settings):
    token = vault.encrypt("abc")
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(vault.SecretUnreadable):
        vault.decrypt(token)


@pytest.mark.django_db
def test_stored_mt5_password_is_encrypted(owned_account):
    raw = bytes(TradingAccount.objects.values_list("password_encrypted", flat=True).get(pk=owned_account.pk))
    assert SIM_PASSWORD.encode() not in raw
    assert vault.decrypt(raw) == SIM_PASSWORD


@pytest.mark.django_db
def test_rotate_secrets_moves_every_password_to_the_new_key(settings, owned_account):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_secrets")
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is dropped after rotation
    owned_account.refresh_from_db()
    assert vault.decrypt(owned_account.password_encrypted) == SIM_PASSWORD
