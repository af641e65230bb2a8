"""One run at a time: a named, non-blocking lock chosen by backend.

Two beats, a redelivered task or a manual run on top of a scheduled one must
not run the same maintenance at once (DESIGN §5). Whoever finds the lock
taken logs and exits; nobody waits.

Backends (`REVOCATION_LOCK_BACKEND`, default `auto`):

- `postgresql`: a session-level advisory lock on the database being
  maintained. The server drops it when the holder's connection ends, so a
  killed worker never leaves it behind. Not usable behind a pgbouncer in
  transaction-pooling mode (use `redis` there).
- `mysql`: a named lock (`GET_LOCK`) on the MariaDB/MySQL connection, dropped
  by the server with the connection, like PostgreSQL's. Same caveat behind a
  pooler that hands one connection to several clients.
- `sqlite`: an exclusive `flock()` on a file beside the database file. SQLite
  only works on one host, so every process that could run maintenance sees
  that file; the kernel drops the lock when the holder dies.
- `redis`: `SET key token NX EX ttl` on the default cache's Redis, renewed by
  every batch and released only by the token's owner.
- `cache`: `cache.add()` on the default cache; atomic on Memcached, Redis and
  the database cache, not on the file or local-memory caches.

`auto` picks `postgresql`, `mysql` or `sqlite` from the database vendor, else `redis`
when the default cache is Django's Redis cache, else `cache`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections

from . import sql
from .app_settings import app_settings

logger = logging.getLogger("revocation")

BACKENDS = ("postgresql", "mysql", "sqlite", "redis", "cache")
# Backends that lock on the database connection, so need that vendor's database.
DATABASE_BACKENDS = ("postgresql", "mysql")
# Seconds a TTL-based lock outlives its last renewal; every batch renews it, so
# only a holder that is stuck (or dead) for this long lets a second run start.
DEFAULT_TTL = 600
CACHE_ALIAS = "default"

# Delete or extend the key only while it still holds our token (not a later holder's).
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('expire', KEYS[1], ARGV[2]) end return 0"
)


class Lock(Protocol):
    """A held lock: renew it while working, release it when done."""

    name: str
    backend: str

    def acquire(self) -> bool:
        """Take the lock if it is free; return whether we hold it now."""

    def renew(self) -> None:
        """Tell the lock we are still alive (extends TTL-based locks)."""

    def release(self) -> None:
        """Give the lock up."""


class _ConnectionLock:
    """A lock held by a database connection: the server drops it when the connection ends."""

    name: str

    def renew(self) -> None:
        """Nothing to do: the lock lives as long as the connection."""

    def release(self) -> None:
        try:
            self._unlock()
        except DatabaseError:
            # The connection is gone, and the server released the lock with it.
            logger.warning("revocation lock %s: connection lost before unlock", self.name)

    def _unlock(self) -> None:
        raise NotImplementedError


class AdvisoryLock(_ConnectionLock):
    """A PostgreSQL session-level advisory lock on connection `using`."""

    backend = "postgresql"

    def __init__(self, name: str, *, using: str = "default") -> None:
        self.name = name
        self.using = using
        # pg_try_advisory_lock takes a signed 64-bit key.
        digest = hashlib.sha256(f"revocation-lock:{name}".encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)

    def acquire(self) -> bool:
        return sql.try_advisory_lock(self.using, self.key)

    def _unlock(self) -> None:
        sql.advisory_unlock(self.using, self.key)


class NamedLock(_ConnectionLock):
    """A MariaDB/MySQL named lock (`GET_LOCK`) on connection `using`."""

    backend = "mysql"

    def __init__(self, name: str, *, using: str = "default") -> None:
        self.name = name
        self.using = using
        # Named locks are server-wide, not per database, and MySQL caps their names at
        # 64 characters: hash the database's name in with the lock's.
        database = connections[using].settings_dict["NAME"]
        digest = hashlib.sha256(f"revocation-lock:{database}:{name}".encode()).hexdigest()
        self.key = f"revocation:{digest[:40]}"

    def acquire(self) -> bool:
        return sql.get_lock(self.using, self.key)

    def _unlock(self) -> None:
        sql.release_lock(self.using, self.key)


class FileLock:
    """An exclusive flock() on `path`, dropped by the kernel if the process dies."""

    backend = "sqlite"

    def __init__(self, name: str, *, path: Path) -> None:
        self.name = name
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def renew(self) -> None:
        """Nothing to do: the lock lives as long as the open file."""

    def release(self) -> None:
        if self._fd is not None:
            # Closing the descriptor drops the flock.
            os.close(self._fd)
            self._fd = None


class RedisLock:
    """`SET NX EX` with a random token on the Redis behind a Django RedisCache."""

    backend = "redis"

    def __init__(self, name: str, *, ttl: int, alias: str = CACHE_ALIAS) -> None:
        self.name = name
        self.ttl = ttl
        cache: Any = caches[alias]
        self.key = cache.make_and_validate_key(f"revocation:lock:{name}")
        self.client = cache._cache.get_client(self.key, write=True)
        self.token = uuid.uuid4().hex

    def acquire(self) -> bool:
        return bool(self.client.set(self.key, self.token, nx=True, ex=self.ttl))

    def renew(self) -> None:
        if not self.client.eval(_RENEW, 1, self.key, self.token, self.ttl):
            logger.warning("revocation lock %s expired while held; it was taken over", self.name)

    def release(self) -> None:
        self.client.eval(_RELEASE, 1, self.key, self.token)


class CacheLock:
    """`cache.add()` with a random token; only as atomic as the cache backend's add()."""

    backend = "cache"

    def __init__(self, name: str, *, ttl: int, alias: str = CACHE_ALIAS) -> None:
        self.name = name
        self.ttl = ttl
        self.cache = caches[alias]
        self.key = f"revocation:lock:{name}"
        self.token = uuid.uuid4().hex

    def acquire(self) -> bool:
        return bool(self.cache.add(self.key, self.token, self.ttl))

    def renew(self) -> None:
        self.cache.touch(self.key, self.ttl)

    def release(self) -> None:
        if self.cache.get(self.key) == self.token:
            self.cache.delete(self.key)


def backend_name(using: str = "default") -> str:
    """Return the lock backend to use: the setting, or the one `auto` picks."""
    chosen = app_settings.LOCK_BACKEND
    if chosen != "auto":
        if chosen not in BACKENDS:
            raise ImproperlyConfigured(
                f"REVOCATION_LOCK_BACKEND must be 'auto' or one of {', '.join(BACKENDS)}; "
                f"got {chosen!r}"
            )
        return chosen
    vendor = sql.vendor(using)
    if vendor in ("postgresql", "mysql", "sqlite"):
        return vendor
    if _is_redis_cache():
        return "redis"
    return "cache"


def make_lock(name: str, *, ttl: int = DEFAULT_TTL, using: str = "default") -> Lock:
    """Return an unheld lock called `name` on the configured backend."""
    backend = backend_name(using)
    if backend in DATABASE_BACKENDS and sql.vendor(using) != backend:
        raise ImproperlyConfigured(
            f"REVOCATION_LOCK_BACKEND is {backend!r} but the database is {sql.vendor(using)}"
        )
    if backend == "postgresql":
        return AdvisoryLock(name, using=using)
    if backend == "mysql":
        return NamedLock(name, using=using)
    if backend == "sqlite":
        return FileLock(name, path=_lock_path(name, using))
    if backend == "redis":
        if not _is_redis_cache():
            raise ImproperlyConfigured(
                "REVOCATION_LOCK_BACKEND is 'redis' but CACHES['default'] is not "
                "django.core.cache.backends.redis.RedisCache"
            )
        return RedisLock(name, ttl=ttl)
    return CacheLock(name, ttl=ttl)


@contextlib.contextmanager
def hold(name: str, *, ttl: int = DEFAULT_TTL, using: str = "default") -> Iterator[Lock | None]:
    """Hold lock `name` for the block; yield None, holding nothing, if someone else has it."""
    lock = make_lock(name, ttl=ttl, using=using)
    if not lock.acquire():
        yield None
        return
    try:
        yield lock
    finally:
        lock.release()


def _is_redis_cache() -> bool:
    """Return whether the default cache is Django's Redis cache."""
    from django.core.cache.backends.redis import RedisCache

    return isinstance(caches[CACHE_ALIAS], RedisCache)


def _lock_path(name: str, using: str) -> Path:
    """Return the lock file of `name`: beside the SQLite file, or in the temp folder."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    database = str(connections[using].settings_dict["NAME"])
    if database in ("", ":memory:") or "mode=memory" in database:
        # An in-memory database lives in one process; so does whoever could contend.
        return Path(tempfile.gettempdir()) / f"revocation-{os.getpid()}-{slug}.lock"
    return Path(f"{database}.{slug}.lock")
