"""Per-user rate limits of the revocation API, kept in the shared cache.

A fixed window per user: `N/min` lets N requests through in each calendar
minute, counted by the cache server (`add` then `incr`, atomic on Redis,
Memcached and the local-memory cache; on the file cache a read-then-write
under a `flock`). A burst across a window boundary can pass up to 2N in a
short span: the price of one counter instead of a timestamp list.

If the cache is down the request goes through and a warning is logged: a
revocation is a security action, and a rate limit is not worth refusing it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import BaseCache
from django.http import HttpRequest
from ninja.throttling import BaseThrottle

from . import cachelock

logger = logging.getLogger("revocation")

_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """Return (requests, seconds) for a rate such as "20/min"."""
    count, _, period = rate.partition("/")
    try:
        return int(count), _PERIODS[period.strip()]
    except (KeyError, ValueError) as exc:
        raise ValueError(f"invalid rate {rate!r}: expected N/s, N/min, N/hour or N/day") from exc


def hit(bucket: str, ident: Any, rate: str) -> float | None:
    """Count one request of `ident` in `bucket`; return None if allowed, else seconds to wait."""
    limit, period = parse_rate(rate)
    now = _now()
    window = int(now // period)
    try:
        # Lives until its window is over (from its first request, which is within it).
        count = _count(f"revocation:throttle:{bucket}:{ident}:{window}", timeout=period + 1)
    except Exception:
        logger.warning(
            "revocation: cache unavailable, rate limit %r not applied to %s",
            bucket,
            ident,
            exc_info=True,
        )
        return None
    if count <= limit:
        return None
    return max((window + 1) * period - now, 1.0)


def _now() -> float:
    """Return the current time (a seam for tests)."""
    return time.time()


def _count(key: str, *, timeout: int) -> int:
    """Add one to the counter `key` (created with `timeout`) and return its new value."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    if type(backend).incr is BaseCache.incr:
        # No incr of its own (file, database caches): a get and a set, which also
        # resets the timeout; serialise them and keep the timeout ours.
        with cachelock.serialized(backend, "revocation-throttle"):
            count = int(backend.get(key, 0)) + 1
            backend.set(key, count, timeout)
            return count
    for _ in range(2):
        backend.add(key, 0, timeout)
        try:
            return int(backend.incr(key))
        except ValueError:
            continue  # expired between add() and incr(): create it again
    raise ValueError(f"counter {key} keeps disappearing")


class UserRateThrottle(BaseThrottle):
    """A django-ninja throttle: `rate()` requests per user (or IP) in `bucket`."""

    def __init__(self, bucket: str, rate: Callable[[], str]) -> None:
        self.bucket = bucket
        self.rate = rate
        # ninja shares one throttle object between threads; wait() follows allow_request().
        self._local = threading.local()

    def allow_request(self, request: HttpRequest) -> bool:
        user = getattr(request, "user", None)
        ident = user.pk if user is not None and user.is_authenticated else self.get_ident(request)
        self._local.wait = hit(self.bucket, ident, self.rate())
        return self._local.wait is None

    def wait(self) -> float | None:
        return getattr(self._local, "wait", None)
