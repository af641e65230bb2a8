"""Prune orphaned mappings: rows whose session is gone, expired, or someone else's.

The first two are found with a set-based anti-join (no decoding). Ownership
needs the session decoded (about 30 µs each), so every prune checks a bounded
slice, continuing where the previous one stopped; `clearsessions
--verify-owners` checks every row.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.core.cache import caches
from django.db import DatabaseError, connections, router, transaction

from .. import engines
from ..app_settings import app_settings
from ..models import UserSession
from ._base import Progress, cache_prefix, db_datetime, delete_in_batches, no_progress

logger = logging.getLogger("revocation")

# Where the rotating ownership check resumes; losing it only restarts the rotation.
OWNER_CURSOR_KEY = "revocation:maintenance:owner-cursor"


def prune_mappings(
    *, now: datetime, batch_size: int, progress: Progress | None = None
) -> tuple[int, int]:
    """Delete mapping rows whose session is gone or expired; return (pruned, relinked)."""
    progress = progress or no_progress
    if engines.has_table():
        model = engines.session_model()
        using = router.db_for_write(UserSession)
        vendor = connections[using].vendor
        if router.db_for_read(model) != using:
            return _prune_by_lookup(model, now, batch_size, progress), 0
        if vendor == "postgresql":
            return _prune_by_snapshot(model, using, now, batch_size, progress), 0
        if vendor == "sqlite":
            return _prune_by_anti_join(model, using, now, batch_size, progress), 0
        return _prune_by_lookup(model, now, batch_size, progress), 0
    if cache_prefix() is not None:
        return _prune_by_cache(batch_size, progress)
    if not engines.has_server_state():
        return _prune_idle(now, batch_size, progress), 0
    return _prune_by_exists(batch_size, progress), 0


def _prune_by_snapshot(
    model: Any, using: str, now: datetime, batch: int, progress: Progress
) -> int:
    """Find every orphan with one read-only anti-join, then delete them `batch` at a time.

    Checking each mapping row with its own probe into the session table costs a
    random heap read per row (about 25 µs once the tables outgrow
    shared_buffers: 12 s for 500k mappings); one hash anti-join reads each
    table once (about 1 s). The orphans wait in a temporary table (server
    side, on this connection) in physical order, so each batch deletes from
    neighbouring pages, reached by TID scan. A row goes only if it is still the
    same row with the same key: a mapping that moved to a new key meanwhile stays.
    """
    connection = connections[using]
    qn = connection.ops.quote_name
    mapping, key = qn(UserSession._meta.db_table), qn("session_key")
    sessions = qn(model._meta.db_table)
    session_key = qn(model._meta.pk.column)
    expire = qn(model._meta.get_field("expire_date").column)
    snapshot = qn("revocation_orphans")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{snapshot}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {snapshot} AS SELECT m.ctid AS tid, m.id, m.{key} "  # noqa: S608
            f"FROM {mapping} m WHERE NOT EXISTS (SELECT 1 FROM {sessions} s "
            f"WHERE s.{session_key} = m.{key} AND s.{expire} > %s)",
            [now],
        )
        cursor.execute(f"CREATE INDEX ON {snapshot} (tid)")
    progress("mappings", 0)
    delete = (
        f"WITH w AS (SELECT tid, id, {key} FROM {snapshot} WHERE tid > %s::tid "  # noqa: S608
        f"ORDER BY tid LIMIT %s), d AS (DELETE FROM {mapping} m USING w "
        # ctid = ANY(array) makes it a TID scan: a bare join on ctid is planned as a
        # merge join walking the primary key from the start, batch after batch.
        f"WHERE m.ctid = ANY(ARRAY(SELECT tid FROM w)) "
        f"AND m.ctid = w.tid AND m.id = w.id AND m.{key} = w.{key} RETURNING 1) "
        "SELECT (SELECT max(tid) FROM w)::text, (SELECT count(*) FROM d)"
    )
    after, pruned = "(0,0)", 0
    try:
        while True:
            with transaction.atomic(using=using), connection.cursor() as cursor:
                cursor.execute(delete, [after, batch])
                last, count = cursor.fetchone()
            if last is None:
                return pruned
            pruned += count
            progress("mappings", pruned)
            after = last
    finally:
        # A broken connection took the temporary table with it.
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{snapshot}")


def _prune_by_anti_join(
    model: Any, using: str, now: datetime, batch: int, progress: Progress
) -> int:
    """Delete mappings with no live session row, one id window of `batch` rows at a time."""
    connection = connections[using]
    qn = connection.ops.quote_name
    mapping, pk = qn(UserSession._meta.db_table), qn("id")
    key = qn(UserSession._meta.get_field("session_key").column)
    sessions = qn(model._meta.db_table)
    session_key = qn(model._meta.pk.column)
    expire = qn(model._meta.get_field("expire_date").column)
    window_end = f"SELECT {pk} FROM {mapping} WHERE {pk} > %s ORDER BY {pk} LIMIT 1 OFFSET %s"  # noqa: S608
    delete = (
        f"DELETE FROM {mapping} WHERE {pk} > %s AND {pk} <= %s AND NOT EXISTS ("  # noqa: S608
        f"SELECT 1 FROM {sessions} WHERE {sessions}.{session_key} = {mapping}.{key} "
        f"AND {sessions}.{expire} > %s)"
    )
    cursor_id, pruned = 0, 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(window_end, [cursor_id, batch - 1])
            row = cursor.fetchone()
        # The last window is open-ended: it also covers rows inserted meanwhile.
        upper = row[0] if row else 2**63 - 1
        with transaction.atomic(using=using), connection.cursor() as cursor:
            cursor.execute(delete, [cursor_id, upper, db_datetime(using, now)])
            pruned += cursor.rowcount
        progress("mappings", pruned)
        if row is None:
            return pruned
        cursor_id = upper


def _prune_by_lookup(model: Any, now: datetime, batch: int, progress: Progress) -> int:
    """Delete mappings with no live session row when the two tables live in different databases."""
    pruned = 0
    for rows in _mapping_pages(batch):
        keys = [key for _, key, _ in rows]
        live = set(
            model._base_manager.filter(pk__in=keys, expire_date__gt=now).values_list(
                "pk", flat=True
            )
        )
        pruned += _delete_mappings([pk for pk, key, _ in rows if key not in live])
        progress("mappings", pruned)
    return pruned


def _prune_by_cache(batch: int, progress: Progress) -> tuple[int, int]:
    """Check mapped sessions in the cache, `batch` keys per round trip; owners come for free."""
    prefix = cache_prefix() or ""
    cache = caches[settings.SESSION_CACHE_ALIAS]
    pruned = relinked = 0
    for rows in _mapping_pages(batch):
        found = cache.get_many([prefix + key for _, key, _ in rows])
        sessions = {key: found.get(prefix + key) for _, key, _ in rows}
        p, r = _reconcile_owners(rows, sessions)
        pruned, relinked = pruned + p, relinked + r
        progress("mappings", pruned)
    return pruned, relinked


def _prune_idle(now: datetime, batch: int, progress: Progress) -> int:
    """Delete signed-cookie mappings idle for longer than any such cookie can live.

    A signed cookie is valid for SESSION_COOKIE_AGE after its last save, and a
    session in use is saved (and its mapping touched) at least every
    REVOCATION_TOUCH_INTERVAL.
    """
    cutoff = now - timedelta(seconds=settings.SESSION_COOKIE_AGE + app_settings.TOUCH_INTERVAL)
    idle = UserSession.objects.filter(last_seen_at__lt=cutoff)
    return delete_in_batches(idle, batch, "mappings", progress)


def _prune_by_exists(batch: int, progress: Progress) -> int:
    """Ask an engine we know nothing about whether each mapped session exists."""
    store = engines.store_class()()
    pruned = 0
    for rows in _mapping_pages(batch):
        pruned += _delete_mappings([pk for pk, key, _ in rows if not store.exists(key)])
        progress("mappings", pruned)
    return pruned


# --- Ownership: the session names another user ---------------------------------------


def check_owners(
    *, now: datetime, batch_size: int, limit: int | None, progress: Progress | None = None
) -> tuple[int, int]:
    """Decode the sessions of up to `limit` mappings (None: all); fix those naming another user.

    With a limit, the check resumes after the last row the previous call
    checked and wraps around at the end, so a bounded cost per run still
    covers the whole table over successive runs. Returns (pruned, relinked).
    """
    progress = progress or no_progress
    if not engines.has_table():
        # The cache engine checks owners while pruning; signed cookies have nothing to read.
        return 0, 0
    model = engines.session_model()
    store = engines.store_class()()
    cache = caches["default"]
    start = int(cache.get(OWNER_CURSOR_KEY, 0)) if limit is not None else 0
    checked = pruned = relinked = 0
    for rows in _mapping_pages(batch_size, after=start, limit=limit):
        keys = [key for _, key, _ in rows]
        stored = dict(
            model._base_manager.filter(pk__in=keys, expire_date__gt=now).values_list(
                "pk", "session_data"
            )
        )
        sessions = {key: store.decode(data) for key, data in stored.items()}
        p, r = _reconcile_owners(rows, sessions)
        pruned, relinked, checked = pruned + p, relinked + r, checked + len(rows)
        start = rows[-1][0]
        progress("owners", checked)
    if limit is not None:
        # Fewer rows than asked for means we reached the end: start over next time.
        cache.set(OWNER_CURSOR_KEY, start if checked >= limit else 0, None)
    return pruned, relinked


def _reconcile_owners(
    rows: Sequence[tuple[int, str, Any]], sessions: Mapping[str, Any]
) -> tuple[int, int]:
    """Delete rows whose session is missing or anonymous; point the rest at the session's user.

    A row naming the wrong user is moved to the session's user rather than
    dropped: revoking that user must find the session. It keeps its sign-in
    time, so a revocation already pending for that user still covers it.
    """
    user_model = get_user_model()
    pk_field = user_model._meta.pk
    assert pk_field is not None  # noqa: S101
    dead: list[int] = []
    moves: list[tuple[int, Any, Any]] = []
    for pk, key, user_id in rows:
        data = sessions.get(key)
        owner = data.get(SESSION_KEY) if isinstance(data, dict) else None
        if owner is None:
            dead.append(pk)
            continue
        try:
            owner = pk_field.to_python(owner)
        except Exception:
            dead.append(pk)
            continue
        if owner != user_id:
            moves.append((pk, user_id, owner))
    existing = set(
        user_model._default_manager.filter(pk__in={o for _, _, o in moves}).values_list(
            "pk", flat=True
        )
    )
    relinked = 0
    for pk, old, new in moves:
        if new not in existing:
            dead.append(pk)
            continue
        # Conditional: a login may have re-linked the row since we read it.
        relinked += UserSession.objects.filter(pk=pk, user_id=old).update(user_id=new)
    if moves:
        logger.warning(
            "revocation: %d mapping rows named the wrong user and were corrected", relinked
        )
    return _delete_mappings(dead), relinked


# --- Helpers ----------------------------------------------------------------------


def _mapping_pages(
    batch: int, *, after: int = 0, limit: int | None = None
) -> Iterator[list[tuple[int, str, Any]]]:
    """Yield lists of (pk, session_key, user_id) in pk order, `batch` rows at a time."""
    seen = 0
    while limit is None or seen < limit:
        take = batch if limit is None else min(batch, limit - seen)
        rows = list(
            UserSession.objects.filter(pk__gt=after)
            .order_by("pk")
            .values_list("pk", "session_key", "user_id")[:take]
        )
        if not rows:
            return
        yield rows
        seen += len(rows)
        after = rows[-1][0]
        if len(rows) < take:
            return


def _delete_mappings(ids: list[int]) -> int:
    """Delete the mapping rows `ids` in one short transaction."""
    if not ids:
        return 0
    return UserSession.objects.filter(pk__in=ids).delete()[1].get(UserSession._meta.label, 0)
