"""Secrets at rest: MultiFernet encryption of MT5 passwords and other credentials."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.caches import Memo


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any configured key."""


# Keyed by the configured keys: a rotation (or a test's override) is a new entry.
CIPHERS: Memo[MultiFernet] = Memo("accounts.vault.ciphers", size=4)


def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS holds a key that is not a Fernet key") from exc


def _current() -> MultiFernet:
    keys = tuple(settings.FIELD_ENCRYPTION_KEYS)
    return CIPHERS.get_or_build(keys, lambda: _cipher(keys))


def encrypt(plaintext: str) -> bytes:
    return _current().encrypt(plaintext.encode())


def decrypt(token: bytes | memoryview) -> str:
    try:
        return _current().decrypt(bytes(token)).decode()
    except InvalidToken:
        raise SecretUnreadable("stored secret cannot be decrypted with the configured keys") from None


def rotate(token: bytes | memoryview) -> bytes:
    """Re-encrypt under the first (newest) key; readable by any configured key."""
    try:
        return _current().rotate(bytes(token))
    except InvalidToken:
        raise SecretUnreadable("stored secret cannot be decrypted with the configured keys") from None


def new_key() -> str:
    return Fernet.generate_key().decode()
