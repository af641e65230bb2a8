"""Revocation fences: make a revocation effective on the very next request.

Deleting sessions takes a worker and, for a large organisation, minutes; a
signed-cookie session cannot be deleted at all. So accepting a request also
records a "not valid before" time (like an identity provider's
tokens-valid-after) for each targeted user, the group or scope, or everyone.
`RevocationMiddleware` compares the session's sign-in time (stamped at login)
with the fences that apply to it and logs the request out when it predates one.

Fences live in the database and are mirrored in the cache. On Redis each web
process also keeps a copy of the recent ones, kept current over pub/sub
(`fencecopy`): the hot path is a dictionary lookup. Where the copy cannot vouch
for itself, the check is one `get_many` round trip and no query. A key missing
from the cache is read from the database once and cached (with 0 for "no
fence"), so a cold or flushed cache is still correct. If the cache is down, the
database answers.

A login stamps no group or scope: one key, SCOPED, holds the newest group or
scope fence, and only a session that signed in before it has its user's groups
and scopes looked up, once per newer such fence (`is_fenced`).

The cache never holds an older fence than the database: a load after a miss
only adds (a fence mirrored between our read and our write wins), and a mirror
after a commit keeps the maximum (two revocations finishing in either order
leave the newer). See `monotonic` for how each cache does that atomically.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.db import DEFAULT_DB_ALIAS, router, transaction

from . import fencecopy, monotonic, sql, stamps
from .models import RevocationFence

logger = logging.getLogger("revocation")

GLOBAL = "global"
# The newest group or scope fence: recorded with each, read by every check.
SCOPED = "scoped"
# Values are integer microseconds since the epoch (compared on the cache server).
# The prefix changed with that format: a process of an earlier release, which
# cached float seconds under "revocation:fence:", never misreads one.
CACHE_PREFIX = "revocation:fence-us:"
# Stamped into the session: the group and scope keys that apply to its user, and the
# SCOPED fence they were looked up for.
SCOPES = stamps.SCOPES
SCOPES_FOR = stamps.SCOPES_FOR
_DB_FALLBACK_LOG_EVERY = 60.0
_last_fallback_log = float("-inf")  # not 0: monotonic() may be under a minute
# Keep-the-maximum on a cache that is atomic in one process only: rounds of
# checking against the database before giving up (and logging).
_REPAIR_ROUNDS = 5
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def user_key(user_id: Any) -> str:
    """Return the fence key of one user."""
    return f"user:{user_id}"


def group_key(name: str) -> str:
    """Return the fence key of a group."""
    return f"group:{name}"


def scope_key(name: str, value: Any) -> str:
    """Return the fence key of a scope value."""
    return f"scope:{name}:{value}"


def keep_key(login_id: str) -> str:
    """Return the key of the newest revocation that keeps sign-in `login_id` alive."""
    return f"keep:{login_id}"


def login_key(login_id: str) -> str:
    """Return the fence key of one sign-in: how one signed-cookie session is ended."""
    return f"{RevocationFence.LOGIN_PREFIX}{login_id}"


def record(keys: list[str], at: datetime) -> None:
    """Store fences at `at` for `keys` (never moving one back), mirrored on commit."""
    if not keys:
        return
    # One upsert that keeps the later time (a later request committing first must not
    # be undone) and returns what the database then holds. Sorted: concurrent requests
    # lock the keys they share in one order.
    using = router.db_for_write(RevocationFence)
    mirror_on_commit(sql.dialect(using).raise_fences(sorted(set(keys)), at), using=using)


def mirror_on_commit(stored: dict[str, datetime], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Mirror `stored`, the fences a write left in the database, into the cache on commit.

    What the database holds, not the time asked for: a newer fence committed first
    may have left the cache (evicted, expired, or its mirror failed) and must not
    reappear older.
    """
    values = {k: _micros(v) for k, v in stored.items()}
    transaction.on_commit(lambda: _mirror(values), robust=True, using=using)


def _mirror(values: dict[str, int]) -> None:
    """Raise cached fences to `values` (microseconds), never lowering one."""
    # Not current(): a worker or a command that records fences checks none.
    copy = fencecopy.running()
    if copy is not None:
        # This process sees its own revocations at once; the others within milliseconds.
        copy.raise_to({k: _seconds(v) for k, v in values.items()})
    try:
        monotonic.raise_many(
            _cache_keys(values),
            settings.SESSION_COOKIE_AGE,
            publish=monotonic.channel(fencecopy.CHANNEL),
            names=list(values),
        )
        if not monotonic.is_atomic():
            _repair(list(values))
    except Exception:
        # The database has it; a stale cached value would hide it until it expires, so say so.
        logger.exception("revocation: could not mirror fences %s into the cache", list(values))


def _repair(keys: list[str]) -> None:
    """Raise cached fences that another process lowered behind our back to the database's.

    Memcached or the database cache: keep-the-maximum is a read-then-write there,
    atomic within this process only. An older write of another process can land
    after ours; that process checks after its own write too, so whoever writes
    last sees the database and repairs: the cache converges to the database.
    """
    for _ in range(_REPAIR_ROUNDS):
        stored = _from_db(keys)
        cached = monotonic.get_many([CACHE_PREFIX + k for k in keys])
        behind = {
            k: v
            for k, v in stored.items()
            if CACHE_PREFIX + k in cached and cached[CACHE_PREFIX + k] < v
        }
        if not behind:
            return
        monotonic.raise_many(_cache_keys(behind), settings.SESSION_COOKIE_AGE)
    logger.error("revocation: cached fences %s keep falling behind the database", keys)


def fences_of(keys: Iterable[str]) -> dict[str, float]:
    """Return the fence (epoch seconds, 0.0 if none) of each of `keys`.

    One cache round trip when every key is cached; missing keys are read from
    the database (one query) and cached only where nothing was cached meanwhile.
    """
    keys = list(dict.fromkeys(keys))
    try:
        cached = monotonic.get_many([CACHE_PREFIX + k for k in keys])
    except Exception:
        _log_fallback()
        return {k: _seconds(v) for k, v in _from_db(keys).items()}
    found = {k: cached[CACHE_PREFIX + k] for k in keys if CACHE_PREFIX + k in cached}
    missing = [k for k in keys if k not in found]
    if missing:
        # First sight of these keys (or a flushed cache): ask the database once.
        loaded = _from_db(missing)
        try:
            # Add, never overwrite: a revocation may have committed and mirrored its
            # (newer) fence since our read. This request keeps what it read.
            monotonic.add_many(_cache_keys(loaded), settings.SESSION_COOKIE_AGE)
        except Exception:
            _log_fallback()
        found.update(loaded)
    return {k: _seconds(found[k]) for k in keys}


def latest(keys: Iterable[str]) -> float:
    """Return the newest fence (epoch seconds) among `keys`, 0.0 if none."""
    return max(fences_of(keys).values(), default=0.0)


def _from_db(keys: list[str]) -> dict[str, int]:
    """Return the fence of each of `keys` in microseconds from the database, 0 if none."""
    rows = dict(RevocationFence.objects.filter(key__in=keys).values_list("key", "not_before"))
    return {k: _micros(rows[k]) if k in rows else 0 for k in keys}


def _cache_keys(values: dict[str, int]) -> dict[str, int]:
    """Return `values` under their cache keys."""
    return {CACHE_PREFIX + k: v for k, v in values.items()}


def _micros(at: datetime) -> int:
    """Return `at` as exact integer microseconds since the epoch."""
    aware = at if at.tzinfo is not None else at.astimezone()
    return (aware - _EPOCH) // _MICROSECOND


def _seconds(micros: int) -> float:
    """Return `micros` as epoch seconds, equal to `datetime.timestamp()` of the same instant."""
    return micros / 1_000_000


def _log_fallback() -> None:
    """Warn that fences are read from the database, at most once a minute."""
    global _last_fallback_log
    now = time.monotonic()
    if now - _last_fallback_log >= _DB_FALLBACK_LOG_EVERY:
        _last_fallback_log = now
        logger.warning("revocation: cache unavailable, checking fences in the database")


def is_fenced(session: Any, signed_in_at: float, scopes_of: Callable[[], list[str]] = list) -> bool:
    """Return whether the logged-in `session` predates a fence that applies to it.

    `scopes_of` returns the group and scope keys of the session's user; it is called
    only when a group or scope fence is newer than the sign-in and than the last
    look, and what it returns is stamped into the session.

    A session kept by the newest revocation of its user ("log out my other
    sessions") is spared: its sign-in id has a `keep` entry at least as new as
    the user's fence. Concurrent requests of that session each save their own
    copy of it, so the last one saved may carry an older sign-in stamp than the
    newest fence; the sign-in id survives that, and key rotations too.

    The sign-in's own fence (`login_key`) ends that one session: a signed cookie,
    which no deletion can reach. It is read in the same lookup and ends the
    sign-in whatever its time: a sign-in id is never reused, and a sign-in stamp
    moved forward by a keep (or another server's clock) must not outrun it.
    """
    user_id = session.get(SESSION_KEY)
    if user_id is None:
        return False
    mine = user_key(user_id)
    # Never "" with a user signed in: derived from the sign-in if never stamped.
    login_id = stamps.login_id(session)
    keep, ended = keep_key(login_id), login_key(login_id)
    own = (mine, keep)
    found = _lookup([GLOBAL, SCOPED, *session.get(SCOPES, []), *own, ended], signed_in_at)
    if found.pop(ended):
        return True
    # Not a fence of this session: when the newest group or scope fence was recorded.
    scoped = found.pop(SCOPED)
    # Stamped at sign-in by earlier releases, SCOPES was looked up at signed_in_at.
    if scoped > max(signed_in_at, float(session.get(SCOPES_FOR, signed_in_at))):
        keys = _scopes_now(session, user_id, scopes_of, scoped)
        found.update(_lookup(keys, signed_in_at))
    # `found` answers every key asked for (0.0: no fence), the global one among them.
    if max(v for k, v in found.items() if k not in own) > signed_in_at:
        return True
    fence = found[mine]
    if fence <= signed_in_at:
        return False
    if found[keep] < fence:
        return True
    # Re-stamp, so the kept session's next request needs no keep entry; and its sign-in
    # id, which a session from before ids existed derives from that stamp.
    session[stamps.AUTH_AT] = fence
    session[stamps.LOGIN_ID] = login_id
    return False


def _lookup(keys: list[str], signed_in_at: float) -> dict[str, float]:
    """Return the fences of `keys` from this process's copy if it can answer, else the cache."""
    copy = fencecopy.current()
    if copy is not None and copy.answers(signed_in_at):
        return copy.fences_of(keys)
    return fences_of(keys)


def _scopes_now(
    session: Any, user_id: Any, scopes_of: Callable[[], list[str]], scoped: float
) -> list[str]:
    """Look up the group and scope keys of the session's user and stamp them; [] on failure."""
    try:
        keys = scopes_of()
    except Exception:
        # Checked again on the next request; the user's own and global fences still apply.
        logger.exception("revocation: could not read the groups and scopes of user %s", user_id)
        return []
    session[SCOPES] = keys
    session[SCOPES_FOR] = scoped
    return keys
