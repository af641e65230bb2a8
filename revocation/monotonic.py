"""Integers in the default cache that never move back: add-if-absent and keep-the-maximum.

A value read from the database and cached after a miss must not overwrite a
newer one written meanwhile (so loads only add), and two writers finishing in
the wrong order must leave the larger value (so writes keep the maximum).

- Django's Redis cache: one round trip each, atomic on the server: pipelined
  `SET NX EX` for loads, a small Lua script for keep-the-maximum. Values are
  stored as Django's `RedisSerializer` stores integers (raw, not pickled), so
  Django's `get_many` reads them back and the script compares them as numbers.
  The script can also publish what it leaves stored on a channel, in the same
  atomic step: a subscriber never misses a value the cache holds (`fencecopy`).
- Any other cache: `add()` per key for loads, read-compare-write for the
  maximum, both under `cachelock.serialized` (atomic on the file and
  local-memory caches; within one process only elsewhere: see `is_atomic`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import BaseCache

from . import cachelock

_LOCK = "revocation-monotonic"
# KEYS[i] takes ARGV[i + 3] unless it already holds a number at least as large.
# ARGV[1] is the TTL in seconds ("" for none); ARGV[2] a channel ("" for none) on
# which "name value" lines are published, name ARGV[#KEYS + i + 3] and value what
# KEYS[i] holds afterwards, 1000 lines a message. A non-number is treated as absent.
# Values are published as stored: Lua would print a number above 1e14 rounded.
_KEEP_MAX = """
local n = #KEYS
local lines = {}
for i, key in ipairs(KEYS) do
  local new = ARGV[i + 2]
  local stored = redis.call('GET', key)
  local current = tonumber(stored)
  if current == nil or current < tonumber(new) then
    if ARGV[1] == '' then
      redis.call('SET', key, new)
    else
      redis.call('SET', key, new, 'EX', ARGV[1])
    end
    stored = new
  end
  if ARGV[2] ~= '' then
    lines[#lines + 1] = ARGV[n + i + 2] .. ' ' .. stored
    if #lines == 1000 or i == n then
      redis.call('PUBLISH', ARGV[2], table.concat(lines, '\\n'))
      lines = {}
    end
  end
end
return 0
"""


def _backend() -> BaseCache:
    return caches[DEFAULT_CACHE_ALIAS]


def _redis_client(backend: BaseCache) -> Any:
    """Return a writing redis-py client of `backend` if it is Django's Redis cache, else None."""
    from django.core.cache.backends.redis import RedisCache, RedisSerializer

    if not isinstance(backend, RedisCache):
        return None
    clients: Any = backend._cache  # type: ignore[attr-defined]
    # The script compares raw integers: only Django's serializer stores them that way.
    if not isinstance(clients._serializer, RedisSerializer):
        return None
    return clients.get_client(None, write=True)


def redis_client() -> Any:
    """Return the default cache's redis-py client if it is Django's Redis cache, else None."""
    return _redis_client(_backend())


def channel(name: str) -> str:
    """Return the pub/sub channel called `name` of the default cache's key space.

    Channels are server-wide: the cache's key prefix, version and database number
    keep two sites (or two test runs) on one Redis server apart.
    """
    backend = _backend()
    client = _redis_client(backend)
    db = client.connection_pool.connection_kwargs.get("db", 0) if client is not None else 0
    return f"{backend.make_key(name)}@{db}"


def is_atomic() -> bool:
    """Return whether loads and keep-the-maximum are atomic across all processes."""
    backend = _backend()
    return _redis_client(backend) is not None or cachelock.spans_processes(backend)


def get_many(keys: list[str]) -> dict[str, int]:
    """Return the cached values of `keys` (absent keys left out): one round trip."""
    return _backend().get_many(keys)


def add_many(values: dict[str, int], timeout: int) -> None:
    """Cache each of `values` only where its key holds nothing yet."""
    if not values:
        return
    backend = _backend()
    client = _redis_client(backend)
    if client is not None:
        ttl = backend.get_backend_timeout(timeout)
        pipe = client.pipeline(transaction=False)
        for key, value in values.items():
            pipe.set(backend.make_and_validate_key(key), int(value), ex=ttl, nx=True)
        pipe.execute()
        return
    # add() alone is not atomic on the file cache (has_key, then set): the lock makes it so.
    with cachelock.serialized(backend, _LOCK):
        for key, value in values.items():
            backend.add(key, int(value), timeout)


def raise_many(
    values: dict[str, int], timeout: int, *, publish: str = "", names: Sequence[str] = ()
) -> None:
    """Cache each of `values` unless its key already holds a larger one.

    On Redis, `publish` names a channel (see `channel`) that is told, in the same
    atomic step, the value each key holds afterwards, under `names` (one per key,
    in order; the keys themselves by default).
    """
    if not values:
        return
    backend = _backend()
    client = _redis_client(backend)
    if client is not None:
        ttl = backend.get_backend_timeout(timeout)
        keys = [backend.make_and_validate_key(key) for key in values]
        script = client.register_script(_KEEP_MAX)  # EVALSHA, EVAL once per server
        args = ["" if ttl is None else ttl, publish, *(int(v) for v in values.values())]
        script(keys=keys, args=[*args, *((names or values) if publish else ())])
        return
    with cachelock.serialized(backend, _LOCK):
        current = backend.get_many(list(values))
        higher = {
            key: int(value)
            for key, value in values.items()
            if not isinstance(current.get(key), int) or current[key] < value
        }
        backend.set_many(higher, timeout)
