"""Revocation fences: make a revocation effective on the very next request.

Deleting sessions takes a worker and, for a large organisation, minutes; a
signed-cookie session cannot be deleted at all. So accepting a request also
records a "not valid before" time (like an identity provider's
tokens-valid-after) for each targeted user, the group or scope, or everyone.
`RevocationMiddleware` compares the session's sign-in time (stamped at login)
with the fences that apply to it and logs the request out when it predates one.

Fences live in the database and are mirrored in the cache: the hot path is one
`get_many` round trip and no query. A key missing from the cache is read from
the database once and cached (with 0 for "no fence"), so a cold or flushed
cache is still correct. If the cache is down, the database answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache
from django.db import transaction
from django.db.models import Max

from .models import RevocationFence, RevocationRequest

logger = logging.getLogger("revocation")

GLOBAL = "global"
CACHE_PREFIX = "revocation:fence:"
# Stamped into the session at login: group and scope keys that apply to this user.
SCOPES = "_revocation_scopes"
_DB_FALLBACK_LOG_EVERY = 60.0
_last_fallback_log = 0.0

Target = RevocationRequest.Target


def user_key(user_id: Any) -> str:
    """Return the fence key of one user."""
    return f"user:{user_id}"


def group_key(name: str) -> str:
    """Return the fence key of a group."""
    return f"group:{name}"


def scope_key(name: str, value: Any) -> str:
    """Return the fence key of a scope value."""
    return f"scope:{name}:{value}"


def keys_for(request: RevocationRequest) -> list[str]:
    """Return the fence keys a revocation request sets."""
    if request.target == Target.USERS:
        return [user_key(uid) for uid in request.user_ids]
    if request.target == Target.GROUP:
        return [group_key(request.group_name)]
    if request.target == Target.SCOPE:
        return [scope_key(request.scope_name, request.scope_value)]
    if request.target == Target.EVERYONE:
        return [GLOBAL]
    # Single sessions (a concurrent-session limit): a user fence would end them all.
    return []


def record(keys: list[str], at: datetime) -> None:
    """Store fences at `at` for `keys` (never moving one back), mirrored on commit."""
    # Two statements whatever the number of keys: insert the new ones, then move only
    # older fences forward (a later request committing first must not be undone).
    RevocationFence.objects.bulk_create(
        [RevocationFence(key=k, not_before=at) for k in keys], ignore_conflicts=True
    )
    RevocationFence.objects.filter(key__in=keys, not_before__lt=at).update(not_before=at)
    stamp = at.timestamp()
    transaction.on_commit(lambda: _mirror(dict.fromkeys(keys, stamp)), robust=True)


def _mirror(values: dict[str, float]) -> None:
    """Write fences into the cache, kept as long as a session can live."""
    try:
        cache.set_many(
            {CACHE_PREFIX + k: v for k, v in values.items()}, timeout=settings.SESSION_COOKIE_AGE
        )
    except Exception:
        # The database has it; a stale cached 0 would hide it until it expires, so say so.
        logger.exception("revocation: could not mirror fences %s into the cache", list(values))


def latest(keys: Iterable[str]) -> float:
    """Return the newest fence (epoch seconds) among `keys`, 0.0 if none."""
    keys = list(keys)
    try:
        cached = cache.get_many([CACHE_PREFIX + k for k in keys])
    except Exception:
        _log_fallback()
        return _from_db(keys)
    found = {k: cached[CACHE_PREFIX + k] for k in keys if CACHE_PREFIX + k in cached}
    missing = [k for k in keys if k not in found]
    if missing:
        # First sight of these keys (or a flushed cache): ask the database once.
        rows = dict(
            RevocationFence.objects.filter(key__in=missing).values_list("key", "not_before")
        )
        loaded = {k: rows[k].timestamp() if k in rows else 0.0 for k in missing}
        _mirror(loaded)
        found.update(loaded)
    return max(found.values(), default=0.0)


def _from_db(keys: list[str]) -> float:
    """Return the newest fence among `keys` from the database."""
    newest = RevocationFence.objects.filter(key__in=keys).aggregate(m=Max("not_before"))["m"]
    return newest.timestamp() if newest else 0.0


def _log_fallback() -> None:
    """Warn that fences are read from the database, at most once a minute."""
    global _last_fallback_log
    now = time.monotonic()
    if now - _last_fallback_log >= _DB_FALLBACK_LOG_EVERY:
        _last_fallback_log = now
        logger.warning("revocation: cache unavailable, checking fences in the database")


def is_fenced(session: Any, signed_in_at: float) -> bool:
    """Return whether the logged-in `session` predates a fence that applies to it."""
    user_id = session.get(SESSION_KEY)
    if user_id is None:
        return False
    keys = [user_key(user_id), GLOBAL, *session.get(SCOPES, [])]
    return latest(keys) > signed_in_at
