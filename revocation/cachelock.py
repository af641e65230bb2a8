"""Serialise read-modify-write sequences on caches that have no atomic operation for them.

Redis and Memcached count and compare-and-set on the server; Django's file and
database caches only read and write. On the file cache (the embedded default,
one host by construction) an exclusive `flock()` on a file in the cache folder
makes a read-then-write atomic across every process and thread sharing that
folder. Anything else gets a lock of this process only: exact for the
local-memory cache (which lives in one process), not across processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import threading
from collections.abc import Iterator

from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.locmem import LocMemCache

_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def spans_processes(backend: BaseCache) -> bool:
    """Return whether `serialized(backend, ...)` excludes every process sharing the cache."""
    return isinstance(backend, FileBasedCache | LocMemCache)


@contextlib.contextmanager
def serialized(backend: BaseCache, name: str) -> Iterator[None]:
    """Hold the exclusive lock `name` of `backend` for the block (blocking)."""
    if isinstance(backend, FileBasedCache):
        # Not .djcache: the cache's clear() and culling leave the lock file alone.
        slug = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        folder: str = backend._dir  # type: ignore[attr-defined]
        os.makedirs(folder, exist_ok=True)
        fd = os.open(os.path.join(folder, f"{slug}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Each open() is its own lock holder: threads of one process exclude each other too.
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # drops the flock
        return
    with _process_locks_guard:
        lock = _process_locks.setdefault(name, threading.Lock())
    with lock:
        yield
