"""Scheduled upkeep: delete expired sessions, prune orphaned mappings and old requests.

Every delete is batched, each batch its own short transaction, so memory stays
flat and no row stays locked for long whatever the backlog. Nothing goes
through Django's deletion Collector (DESIGN §5), unless another app hangs a
cascade or a delete signal on the session model: then batches of the ORM
delete keep those working, still bounded.

A mapping row (UserSession) is an orphan when its session is gone, has
expired, or belongs to someone else. The first two are found with a set-based
anti-join (no decoding). Ownership needs the session decoded (about 30 µs
each), so every prune checks a bounded slice, continuing where the previous
one stopped; `clearsessions --verify-owners` checks every row.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.core.cache import caches
from django.db import DatabaseError, connections, router, transaction
from django.db.models.deletion import Collector
from django.utils import timezone

from . import engines, locks
from .app_settings import app_settings
from .models import RevocationFence, RevocationRequest, UserSession

logger = logging.getLogger("revocation")

Progress = Callable[[str, int], None]
"""Called after every batch with the phase name and the rows handled so far in it."""

PHASES = {
    "sessions": "expired sessions deleted",
    "mappings": "orphaned mappings pruned",
    "owners": "mapping owners checked",
    "requests": "finished requests pruned",
    "fences": "expired fences pruned",
}

# Where the rotating ownership check resumes; losing it only restarts the rotation.
OWNER_CURSOR_KEY = "revocation:maintenance:owner-cursor"
# Upper bound of the heap pages one ctid batch scans (8 kB each): 32 MB of reading.
MAX_PAGES_PER_BATCH = 4096


@dataclass
class Summary:
    """What one maintenance run did."""

    sessions_deleted: int = 0
    mappings_pruned: int = 0
    mappings_relinked: int = 0
    requests_pruned: int = 0
    fences_pruned: int = 0
    seconds: float = 0.0
    skipped: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-safe data."""
        return asdict(self)


# --- The two scheduled jobs (also the management command) ------------------------


def clearsessions(
    *,
    batch_size: int | None = None,
    verify_owners: bool = False,
    progress: Progress | None = None,
) -> Summary:
    """Delete expired sessions, then prune orphaned mappings and old requests."""
    batch = batch_size or app_settings.MAINTENANCE_BATCH_SIZE

    def work(step: Progress) -> Summary:
        now = timezone.now()
        summary = Summary(notes=engine_notes())
        summary.sessions_deleted = delete_expired_sessions(now=now, batch_size=batch, progress=step)
        summary.mappings_pruned, summary.mappings_relinked = prune_mappings(
            now=now, batch_size=batch, progress=step
        )
        if verify_owners:
            pruned, relinked = check_owners(now=now, batch_size=batch, limit=None, progress=step)
            summary.mappings_pruned += pruned
            summary.mappings_relinked += relinked
        summary.requests_pruned = prune_requests(now=now, batch_size=batch, progress=step)
        summary.fences_pruned = prune_fences(now=now, batch_size=batch, progress=step)
        return summary

    return _run_locked("revocation.clearsessions", work, progress)


def prune_orphans(*, batch_size: int | None = None, progress: Progress | None = None) -> Summary:
    """Prune orphaned mappings (checking a slice of owners) and old finished requests."""
    batch = batch_size or app_settings.MAINTENANCE_BATCH_SIZE

    def work(step: Progress) -> Summary:
        now = timezone.now()
        summary = Summary()
        summary.mappings_pruned, summary.mappings_relinked = prune_mappings(
            now=now, batch_size=batch, progress=step
        )
        limit = app_settings.OWNER_CHECK_ROWS
        if limit > 0:
            pruned, relinked = check_owners(now=now, batch_size=batch, limit=limit, progress=step)
            summary.mappings_pruned += pruned
            summary.mappings_relinked += relinked
        summary.requests_pruned = prune_requests(now=now, batch_size=batch, progress=step)
        summary.fences_pruned = prune_fences(now=now, batch_size=batch, progress=step)
        return summary

    return _run_locked("revocation.prune_orphans", work, progress)


def _run_locked(
    name: str, work: Callable[[Progress], Summary], progress: Progress | None
) -> Summary:
    """Run `work` under lock `name`; if another run holds it, log and return a skipped summary."""
    started = time.monotonic()
    with locks.hold(name) as lock:
        if lock is None:
            logger.info("%s skipped: another run holds the %s lock", name, locks.backend_name())
            return Summary(skipped=True)

        phases: dict[str, int] = {}

        def step(phase: str, done: int) -> None:
            # Every batch proves we are alive, so a TTL lock never expires under a live run.
            lock.renew()
            if progress is not None:
                progress(phase, done)
                return
            # Nobody watches a scheduled run: log each phase's total as it ends.
            if phases and phase not in phases:
                _log_phase(name, *list(phases.items())[-1], started)
            phases[phase] = done

        summary = work(step)
        if phases:
            _log_phase(name, *list(phases.items())[-1], started)
    summary.seconds = time.monotonic() - started
    logger.info(
        "%s done: sessions_deleted=%d mappings_pruned=%d mappings_relinked=%d "
        "requests_pruned=%d fences_pruned=%d seconds=%.2f",
        name,
        summary.sessions_deleted,
        summary.mappings_pruned,
        summary.mappings_relinked,
        summary.requests_pruned,
        summary.fences_pruned,
        summary.seconds,
    )
    return summary


def _log_phase(name: str, phase: str, done: int, started: float) -> None:
    """Log the total of a finished phase (the progress of a scheduled run)."""
    logger.info(
        "%s: %s %d (%.1f s into the run)",
        name,
        PHASES.get(phase, phase),
        done,
        time.monotonic() - started,
    )


def engine_notes() -> list[str]:
    """Return what clearsessions can and cannot do with the configured session engine."""
    engine = engines.engine()
    if engine == "django.contrib.sessions.backends.cached_db":
        return ["cached_db: expired rows are deleted; their cache copies expire by themselves."]
    if engines.has_table():
        return []
    if _cache_prefix() is not None:
        return [
            "SESSION_ENGINE is cache: the cache expires sessions by itself, so there is "
            "nothing to delete; mapping rows whose session left the cache are pruned."
        ]
    if not engines.has_server_state():
        return [
            "SESSION_ENGINE is signed_cookies: sessions live only in the browser, so there "
            "is nothing to clear server-side; mapping rows idle for longer than "
            "SESSION_COOKIE_AGE are pruned."
        ]
    return [f"{engine}: expired sessions are cleared by the engine's own clear_expired()."]


# --- Expired sessions -------------------------------------------------------------


def delete_expired_sessions(
    *, now: datetime, batch_size: int, progress: Progress | None = None
) -> int:
    """Delete sessions that expired before `now`, about `batch_size` per transaction."""
    progress = progress or _no_progress
    if not engines.has_table():
        if engines.has_server_state() and _cache_prefix() is None:
            _clear_with_engine()
        return 0
    model = engines.session_model()
    using = router.db_for_write(model)
    vendor = connections[using].vendor
    if not Collector(using=using).can_fast_delete(model._base_manager.all()):
        # Another app put a cascade or a delete signal on sessions: let the ORM honour it.
        return _delete_expired_orm(model, using, now, batch_size, progress)
    if vendor == "postgresql":
        return _delete_expired_pg(model, using, now, batch_size, progress)
    if vendor == "sqlite":
        return _delete_expired_subquery(model, using, now, batch_size, progress)
    return _delete_expired_orm(model, using, now, batch_size, progress)


def _delete_expired_pg(
    model: Any, using: str, now: datetime, batch: int, progress: Progress
) -> int:
    """Delete expired rows in physical order, one range of heap pages per batch.

    Expiry order is random on disk, so batches keyed by expire_date or key touch
    random pages: 17-20 s for 900k rows against 1.9 s by ctid range
    (PERF-BASELINES §2), and Django's single DELETE is about as fast.

    A batch is a range of whole pages, sized from the share of expired rows in
    the previous range to hold about `batch` of them. It grows at most twofold
    per step, and never past the pages that `4 * batch` live rows fill, so a
    dense stretch after a sparse one still makes a bounded transaction. (A
    LIMIT per range would cap it exactly, at 1.4x the time.)
    """
    connection = connections[using]
    table = connection.ops.quote_name(model._meta.db_table)
    expire = connection.ops.quote_name(model._meta.get_field("expire_date").column)
    size = _pg_table_size(using, model._meta.db_table)
    if size is None:
        return _delete_expired_subquery(model, using, now, batch, progress)
    pages, rows_per_page = size
    sql = (
        f"DELETE FROM {table} WHERE ctid >= %s::tid AND ctid < %s::tid "  # noqa: S608
        f"AND {expire} < %s"
    )
    # Start as if every row had expired: the first batch cannot be too big.
    span = max(1, math.ceil(batch / rows_per_page))
    widest = max(1, min(MAX_PAGES_PER_BATCH, math.ceil(4 * batch / rows_per_page)))
    start = deleted = 0
    while True:
        if start >= pages:
            # Logins during the run may have grown the table: finish the new pages too.
            pages = (_pg_table_size(using, model._meta.db_table) or (0, 0))[0]
            if start >= pages:
                return deleted
        end = start + span
        with transaction.atomic(using=using), connection.cursor() as cursor:
            cursor.execute(sql, [f"({start},0)", f"({end},0)", _db_datetime(using, now)])
            count = cursor.rowcount
        deleted += count
        progress("sessions", deleted)
        start = end
        wanted = math.ceil(batch * span / count) if count else MAX_PAGES_PER_BATCH
        span = max(1, min(wanted, span * 2, widest))


def _pg_table_size(using: str, db_table: str) -> tuple[int, float] | None:
    """Return (heap pages, rows per page) of a plain table, or None if it is not one."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relkind, pg_relation_size(oid) / current_setting('block_size')::int, "
            "reltuples, relpages FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(db_table)],
        )
        row = cursor.fetchone()
    if row is None or row[0] != "r":
        # A partitioned table or a view: ctid ranges mean nothing there.
        return None
    _, pages, reltuples, relpages = row
    # Never analysed: assume rows of about 250 bytes (a login's session).
    rows_per_page = reltuples / relpages if relpages > 0 and reltuples > 0 else 30.0
    return int(pages), max(1.0, rows_per_page)


def _delete_expired_subquery(
    model: Any, using: str, now: datetime, batch: int, progress: Progress
) -> int:
    """Delete expired rows `batch` at a time through the expire_date index."""
    connection = connections[using]
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(model._meta.pk.column)
    expire = connection.ops.quote_name(model._meta.get_field("expire_date").column)
    inner = f"SELECT {pk} FROM {table} WHERE {expire} < %s LIMIT %s"  # noqa: S608
    sql = (
        f"DELETE FROM {table} WHERE {pk} = ANY(ARRAY({inner}))"  # noqa: S608
        if connection.vendor == "postgresql"
        else f"DELETE FROM {table} WHERE {pk} IN ({inner})"  # noqa: S608
    )
    deleted = 0
    while True:
        with transaction.atomic(using=using), connection.cursor() as cursor:
            cursor.execute(sql, [_db_datetime(using, now), batch])
            count = cursor.rowcount
        deleted += count
        progress("sessions", deleted)
        if count < batch:
            return deleted


def _delete_expired_orm(
    model: Any, using: str, now: datetime, batch: int, progress: Progress
) -> int:
    """Delete expired rows through the ORM, `batch` keys per transaction."""
    expired = model._base_manager.using(using).filter(expire_date__lt=now)
    deleted = 0
    while True:
        with transaction.atomic(using=using):
            keys = list(expired.values_list("pk", flat=True)[:batch])
            if keys:
                deleted += expired.filter(pk__in=keys).delete()[1].get(model._meta.label, 0)
        progress("sessions", deleted)
        if len(keys) < batch:
            return deleted


def _clear_with_engine() -> None:
    """Let an engine we know nothing about clear itself, if it can."""
    try:
        engines.store_class().clear_expired()
    except NotImplementedError:
        logger.info("clearsessions: %s cannot clear expired sessions", engines.engine())


# --- Orphaned mappings --------------------------------------------------------------


def prune_mappings(
    *, now: datetime, batch_size: int, progress: Progress | None = None
) -> tuple[int, int]:
    """Delete mapping rows whose session is gone or expired; return (pruned, relinked)."""
    progress = progress or _no_progress
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
    if _cache_prefix() is not None:
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
    neighbouring pages. A row goes only if it is still the same row with the
    same key: a mapping that moved to a new key meanwhile stays.
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
        f"WHERE m.ctid = w.tid AND m.id = w.id AND m.{key} = w.{key} RETURNING 1) "
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
            cursor.execute(delete, [cursor_id, upper, _db_datetime(using, now)])
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
    prefix = _cache_prefix() or ""
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
    return _delete_in_batches(idle, batch, "mappings", progress)


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
    progress = progress or _no_progress
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


# --- Finished revocation requests ---------------------------------------------------


def prune_requests(*, now: datetime, batch_size: int, progress: Progress | None = None) -> int:
    """Delete finished requests older than REVOCATION_REQUEST_RETENTION_DAYS (0 keeps all)."""
    days = app_settings.REQUEST_RETENTION_DAYS
    if days <= 0:
        return 0
    State = RevocationRequest.State
    old = RevocationRequest.objects.filter(
        state__in=[State.DONE, State.FAILED], finished_at__lt=now - timedelta(days=days)
    )
    return _delete_in_batches(old, batch_size, "requests", progress or _no_progress)


def prune_fences(*, now: datetime, batch_size: int, progress: Progress | None = None) -> int:
    """Delete fences older than SESSION_COOKIE_AGE: no session they could stop is still valid."""
    stale = RevocationFence.objects.filter(
        not_before__lt=now - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    )
    return _delete_in_batches(stale, batch_size, "fences", progress or _no_progress)


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


def _delete_in_batches(queryset: Any, batch: int, phase: str, progress: Progress) -> int:
    """Delete the rows of `queryset`, `batch` per short transaction; return how many."""
    model = queryset.model
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(queryset.order_by().values_list("pk", flat=True)[:batch])
            if ids:
                deleted += (
                    model._base_manager.filter(pk__in=ids).delete()[1].get(model._meta.label, 0)
                )
        progress(phase, deleted)
        if len(ids) < batch:
            return deleted


def _delete_mappings(ids: list[int]) -> int:
    """Delete the mapping rows `ids` in one short transaction."""
    if not ids:
        return 0
    return UserSession.objects.filter(pk__in=ids).delete()[1].get(UserSession._meta.label, 0)


def _cache_prefix() -> str | None:
    """Return the cache key prefix of a cache-only engine (None for table engines)."""
    if engines.has_table():
        return None
    return getattr(engines.store_class(), "cache_key_prefix", None)


def _db_datetime(using: str, value: datetime) -> Any:
    """Return `value` as the database stores datetimes (naive UTC text on SQLite)."""
    return connections[using].ops.adapt_datetimefield_value(value)


def _no_progress(phase: str, done: int) -> None:
    """Report nothing."""
