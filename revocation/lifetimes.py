"""Session lifetime limits: an idle timeout and an absolute lifetime (as Keycloak and Auth0 have).

`REVOCATION_IDLE_TIMEOUT` logs a session out after that many seconds without a
request, `REVOCATION_MAX_LIFETIME` that many seconds after its sign-in whatever
its activity; both are off (0) by default. `RevocationMiddleware` enforces them
from times stamped in the session itself (`stamps`): the sign-in (LOGIN_AT) and
the last activity (SEEN_AT). So the check costs no query and no cache round trip,
and holds on every engine, signed cookies included.

Last activity is stamped at most once per `activity_interval()`, not on every
request: a new stamp modifies the session, and a modified session is saved (an
UPDATE on the db engines, a cache write, a new cookie for signed cookies). Saving
on every request to make the idle timeout exact would add a write to every
request of every user; an idle timeout only needs the precision of the interval.
Erring early, never late: a session idle for IDLE_TIMEOUT seconds is always
logged out (its newest stamp is at least that old), and one whose requests come
less than IDLE_TIMEOUT - interval seconds apart never is (each stamp is at most
an interval older than the request after it). The interval is
REVOCATION_TOUCH_INTERVAL (the same stamp throttles the last-seen writes),
capped at half the idle timeout: an interval as long as the timeout would log
out a user in the middle of their work (`revocation.W004` warns that the cap
applies).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.utils import timezone

from . import stamps
from .app_settings import app_settings


def activity_interval(*, touch_interval: int, idle_timeout: int) -> int:
    """Return the seconds between two stamps of a session's last activity.

    The settings come from the caller: the middleware reads each setting once per
    request (a read costs 1-3 us, about what the whole fence check from the copy costs).
    """
    return min(touch_interval, idle_timeout // 2) if idle_timeout else touch_interval


def deadline(*, logged_in_at: float, seen_at: float) -> float | None:
    """Return when the limits end a session signed in and last active then; None if both are off.

    Epoch seconds in, epoch seconds out.
    """
    idle, lifetime = app_settings.IDLE_TIMEOUT, app_settings.MAX_LIFETIME
    ends = [
        end for limit, end in ((idle, seen_at + idle), (lifetime, logged_in_at + lifetime)) if limit
    ]
    return min(ends, default=None)


def expired(session: Any, now: float) -> bool:
    """Return whether the logged-in `session` outlived its idle timeout or its lifetime at `now`.

    A session without stamps (signed in before the app was installed) counts as
    signed in and last active at the epoch: with a limit on, its next request ends it.
    """
    if SESSION_KEY not in session:
        return False  # anonymous: nothing to log out, and its data (a basket) stays
    end = deadline(logged_in_at=stamps.logged_in_at(session), seen_at=stamps.seen_at(session))
    return end is not None and now >= end


def to_datetime(seconds: float) -> datetime:
    """Return epoch `seconds` as Django's now() would give it: aware UTC, or naive local time."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment if settings.USE_TZ else timezone.make_naive(moment)
