"""revocation.cache.RedisCache: Django's Redis cache with one shared redis-py client."""

from __future__ import annotations

import os
from typing import Any

import pytest

from revocation.cache import RedisCache

REDIS_URL = os.environ.get("REDIS_URL")


def _client_of(cache: Any) -> Any:
    """Return the cache's RedisCacheClient (Django keeps it private)."""
    return cache._cache


def test_one_server_shares_one_client() -> None:
    clients = _client_of(RedisCache("redis://127.0.0.1:6379/0", {}))
    client = clients.get_client()
    assert clients.get_client(write=True) is client
    assert clients.get_client("some-key") is client


def test_replicas_keep_djangos_client_per_call() -> None:
    clients = _client_of(RedisCache("redis://127.0.0.1:6379/0,redis://127.0.0.1:6380/0", {}))
    assert clients.get_client(write=True) is not clients.get_client(write=True)


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL")
def test_it_behaves_as_djangos_cache() -> None:
    cache = RedisCache(str(REDIS_URL), {"KEY_PREFIX": f"test-cache-{os.getpid()}"})
    cache.set_many({"a": 1.5, "b": "two"}, timeout=30)
    assert cache.get_many(["a", "b", "missing"]) == {"a": 1.5, "b": "two"}
    assert cache.add("a", 3) is False
    cache.delete_many(["a", "b"])
    assert cache.get_many(["a", "b"]) == {}
