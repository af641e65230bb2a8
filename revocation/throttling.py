"""Per-user rate limits of the revocation API, kept in the shared cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest
from ninja.throttling import BaseThrottle

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
    key = f"revocation:throttle:{bucket}:{ident}"
    now = time.time()
    history = [t for t in cache.get(key, []) if t > now - period]
    if len(history) >= limit:
        return max(history[-1] + period - now, 1.0)
    cache.set(key, [now, *history][:limit], period)
    return None


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
