"""Prune orphaned mappings: rows whose session is gone, expired, or someone else's.

The first two are found with a set-based anti-join (no decoding). Ownership
needs the session decoded (about 30 µs each), so every prune checks a bounded
slice, continuing where the previous one stopped; `clearsessions
--verify-owners` checks every row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from django.contrib.auth import SESSION_KEY, get_user_model
from django.core.cache import caches
from django.db import router
from django.db.models import Exists, Q

from .. import engines, sql
from ..models import RevocationFence, UserSession
from ._base import Progress, delete_in_batches, no_progress

logger = logging.getLogger("revocation")

# Where the rotating ownership check resumes; losing it only restarts the rotation.
OWNER_CURSOR_KEY = "revocation:maintenance:owner-cursor"


def prune_mappings(
    *, now: datetime, batch_size: int, progress: Progress | None = None
) -> tuple[int, int]:
    """Delete mapping rows whose session is gone or expired; return (pruned, relinked)."""
    progress = progress or no_progress
    engine = engines.current()
    if engine.has_table:
        model = engine.session_model()
        using = router.db_for_write(UserSession)
        if router.db_for_read(model) == using:
            step = partial(progress, "mappings")
            pruned = sql.dialect(using).prune_orphans(model, now, batch_size, step)
            if pruned is not None:
                return pruned, 0
        return _prune_by_lookup(model, now, batch_size, progress), 0
    if not engine.has_server_state:
        return _prune_idle(now, batch_size, progress), 0
    return _prune_by_store(engine, batch_size, progress)


def _prune_by_lookup(model: Any, now: datetime, batch: int, progress: Progress) -> int:
    """Delete mappings with no live session row, looking their keys up a page at a time.

    For tables in different databases, or a database with no set-based way in `sql`.
    """
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


def _prune_idle(now: datetime, batch: int, progress: Progress) -> int:
    """Delete signed-cookie mappings idle for longer than any such cookie can live, or ended.

    The sessions page lists none of them already (`engines.SignedCookies.live`).
    """
    cutoff = now - engines.cookie_lifespan()
    ended = Exists(RevocationFence.objects.filter(key=engines.ended_sign_in_key()))
    dead = UserSession.objects.filter(Q(last_seen_at__lt=cutoff) | ended)
    return delete_in_batches(dead, batch, "mappings", progress)


def _prune_by_store(engine: engines.Engine, batch: int, progress: Progress) -> tuple[int, int]:
    """Ask the engine about each page of mapped sessions; return (pruned, relinked).

    A cache hands the sessions back, `batch` keys per round trip, so owners come
    for free; an engine we know nothing about is asked whether each one exists.
    """
    store = engine.store_class()
    pruned = relinked = 0
    for rows in _mapping_pages(batch):
        sessions = engine.stored([key for _, key, _ in rows])
        if sessions is None:
            pruned += _delete_mappings([pk for pk, key, _ in rows if not store.exists(key)])
        else:
            p, r = _reconcile_owners(rows, sessions)
            pruned, relinked = pruned + p, relinked + r
        progress("mappings", pruned)
    return pruned, relinked


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
    engine = engines.current()
    if not engine.has_table:
        # The cache engine checks owners while pruning; signed cookies have nothing to read.
        return 0, 0
    model = engine.session_model()
    store = engine.store_class()
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
