"""The per-process memos (config/caches.py) and the Redis cache backend (config/cache.py)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache

from config.caches import Memo, clear_all_memos


def test_a_memo_builds_once_per_key_and_forgets_the_least_recently_used():
    memo = Memo("tests.memo", size=2)
    built = []

    def build(key):
        built.append(key)
        return key * 2

    assert memo.get_or_build(1, lambda: build(1)) == 2
    assert memo.get_or_build(1, lambda: build(1)) == 2
    memo.get_or_build(2, lambda: build(2))
    memo.get_or_build(1, lambda: build(1))  # 1 is now the most recently used
    memo.get_or_build(3, lambda: build(3))  # 2 goes
    memo.get_or_build(1, lambda: build(1))
    memo.get_or_build(2, lambda: build(2))
    assert built == [1, 2, 3, 2]
    assert len(memo) == 2


def test_peeking_at_a_memo_never_builds():
    memo = Memo("tests.peek")
    assert memo.peek("k") is None
    assert len(memo) == 0
    memo.get_or_build("k", lambda: "built")
    assert memo.peek("k") == "built"


def test_one_signal_empties_every_memo():
    first, second = Memo("tests.first"), Memo("tests.second")
    first.get_or_build("k", lambda: "old")
    second.get_or_build("k", lambda: "old")
    clear_all_memos()
    assert first.get_or_build("k", lambda: "new") == "new"
    assert second.get_or_build("k", lambda: "new") == "new"


def test_rotating_the_encryption_keys_uses_a_new_cipher(settings):
    from cryptography.fernet import Fernet

    from accounts import vault

    token = vault.encrypt("secret")
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]
    rotated = vault.rotate(token)
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]
    assert vault.decrypt(rotated) == "secret"
    with pytest.raises(vault.SecretUnreadable):
        vault.decrypt(token)


redis_only = pytest.mark.skipif(
    not settings.CACHES["default"]["BACKEND"].endswith("RedisCache"), reason="needs REDIS_URL"
)


@redis_only
def test_the_redis_cache_keeps_djangos_semantics():
    cache.set("figures", {"equity": "10.00"}, 30)
    assert cache.get("figures") == {"equity": "10.00"}
    cache.set("count", 5)
    assert cache.incr("count") == 6
    assert not cache.add("count", 1)
    assert cache.add("fresh", False, 30) and cache.get("fresh") is False
    cache.set_many({"a": 1, "b": [1, 2]}, 30)
    assert cache.get_many(["a", "b", "missing"]) == {"a": 1, "b": [1, 2]}
    cache.set("gone", 1, 0)
    assert cache.get("gone", "default") == "default"
    assert cache.delete("a") and not cache.has_key("a")
    with pytest.raises(ValueError):
        cache.incr("missing")


@redis_only
def test_the_redis_cache_reuses_one_client():
    assert cache.client is cache.client
