"""The Redis cache backend: Django's cache API over one shared redis-py client per server.

Django's own Redis backend builds a new ``redis.Redis`` for every operation, and each construction fills a
dict of some 170 response callbacks: a few hundred microseconds of CPU per cache call on the EA heartbeat
and sync paths. This backend implements the public cache API (``BaseCache``) over the client of
`config.redis_clients`, which is shared by threads. Values are stored as Django's Redis backend stores them
(integers as themselves, so ``incr`` is Redis's INCR; anything else pickled), with the same keys.
"""

from __future__ import annotations

import pickle

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

from config.redis_clients import redis_for


def _dumps(value) -> bytes | int:
    # An int (not a bool) stays an int, so INCR works on it.
    return value if type(value) is int else pickle.dumps(value, pickle.HIGHEST_PROTOCOL)


def _loads(data: bytes):
    try:
        return int(data)
    except ValueError:
        return pickle.loads(data)  # only this backend writes these keys


class RedisCache(BaseCache):
    def __init__(self, server: str, params: dict):
        super().__init__(params)
        self.server = server

    @property
    def client(self):
        return redis_for(self.server)

    def get_backend_timeout(self, timeout=DEFAULT_TIMEOUT) -> int | None:
        if timeout == DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        # None keeps the key for ever; zero or less deletes it.
        return None if timeout is None else max(0, int(timeout))

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        timeout = self.get_backend_timeout(timeout)
        if timeout == 0:
            added = bool(self.client.set(key, _dumps(value), nx=True))
            if added:
                self.client.delete(key)
            return added
        return bool(self.client.set(key, _dumps(value), ex=timeout, nx=True))

    def get(self, key, default=None, version=None):
        key = self.make_and_validate_key(key, version=version)
        value = self.client.get(key)
        return default if value is None else _loads(value)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> None:
        key = self.make_and_validate_key(key, version=version)
        timeout = self.get_backend_timeout(timeout)
        if timeout == 0:
            self.client.delete(key)
        else:
            self.client.set(key, _dumps(value), ex=timeout)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        timeout = self.get_backend_timeout(timeout)
        if timeout is None:
            return bool(self.client.persist(key))
        return bool(self.client.expire(key, timeout))

    def delete(self, key, version=None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return bool(self.client.delete(key))

    def get_many(self, keys, version=None) -> dict:
        key_map = {self.make_and_validate_key(key, version=version): key for key in keys}
        if not key_map:
            return {}
        values = self.client.mget(list(key_map))
        return {key_map[k]: _loads(v) for k, v in zip(key_map, values, strict=True) if v is not None}

    def has_key(self, key, version=None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return bool(self.client.exists(key))

    def incr(self, key, delta=1, version=None) -> int:
        key = self.make_and_validate_key(key, version=version)
        if not self.client.exists(key):
            raise ValueError(f"Key '{key}' not found.")
        return self.client.incr(key, delta)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None) -> list:
        if not data:
            return []
        timeout = self.get_backend_timeout(timeout)
        safe = {self.make_and_validate_key(key, version=version): _dumps(value) for key, value in data.items()}
        pipeline = self.client.pipeline()
        if timeout == 0:
            pipeline.delete(*safe)
        else:
            pipeline.mset(safe)
            if timeout is not None:
                for key in safe:
                    pipeline.expire(key, timeout)
        pipeline.execute()
        return []

    def delete_many(self, keys, version=None) -> None:
        if keys:
            self.client.delete(*[self.make_and_validate_key(key, version=version) for key in keys])

    def clear(self) -> bool:
        return bool(self.client.flushdb())
