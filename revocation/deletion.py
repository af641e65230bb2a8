"""Delete sessions through the configured engine, so cached copies go too.

Cached copies (`cached_db`) are evicted when the rows are deleted and again
after the deleting transaction commits: until then other connections still
see the rows, and a request in between reloads one and caches it again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from django.conf import settings
from django.core.cache import caches
from django.db import connections, router, transaction
from django.db.models import QuerySet
from django.db.models.deletion import Collector

from . import engines
from .models import UserSession

logger = logging.getLogger("revocation")


def delete_sessions(keys: Sequence[str]) -> int:
    """Delete the sessions `keys` everywhere the engine keeps them; return table rows deleted."""
    if not keys:
        return 0
    store = engines.store_class()
    deleted = 0
    if engines.has_table():
        # No model points at Session (see UserSession), so this is one DELETE statement.
        deleted = engines.session_model().objects.filter(session_key__in=keys).delete()[0]
    if engines.cache_key_prefix() is not None:
        _evict(keys, router.db_for_write(engines.session_model()) if engines.has_table() else None)
    elif not engines.has_table() and engines.has_server_state():
        # A custom engine we know nothing about: use its own delete().
        for key in keys:
            store().delete(key)
    return deleted


def delete_mapped(rows: QuerySet[UserSession]) -> tuple[int, int]:
    """Delete the mapping rows `rows` (a sliced queryset) and their sessions.

    Returns (rows selected, mapping rows deleted): fewer deleted than selected
    means another worker got there first.
    """
    using = router.db_for_write(UserSession)
    if _set_based(using):
        return _delete_mapped_in_sql(rows, using)
    pairs = list(rows.values_list("pk", "session_key"))
    delete_sessions([key for _, key in pairs])
    deleted = UserSession.objects.filter(pk__in=[pk for pk, _ in pairs]).delete()[0]
    return len(pairs), deleted


def _set_based(using: str) -> bool:
    """Return whether mappings and sessions can go in one PostgreSQL statement."""
    if connections[using].vendor != "postgresql" or not engines.has_table():
        return False
    model = engines.session_model()
    return router.db_for_write(model) == using and Collector(using=using).can_fast_delete(
        model._base_manager.all()
    )


def _delete_mapped_in_sql(rows: QuerySet[UserSession], using: str) -> tuple[int, int]:
    """Delete the mappings and their sessions with one statement: no keys travel to Python.

    Shipping a page's keys out and back as two 5,000-item IN lists costs about
    four times the deletes themselves (bench/bulk_revoke.py, "page SQL").
    """
    connection = connections[using]
    qn = connection.ops.quote_name
    model = engines.session_model()
    select, params = rows.values("pk").query.get_compiler(using).as_sql()
    mapping, sessions = qn(UserSession._meta.db_table), qn(model._meta.db_table)
    mapping_pk = qn(UserSession._meta.pk.column)
    key = qn(UserSession._meta.get_field("session_key").column)
    session_key = qn(model._meta.pk.column)
    keys = f"(SELECT array_agg({key}) FROM m)" if engines.cache_key_prefix() is not None else "NULL"  # noqa: S608
    sql = (
        f"WITH s AS ({select}), "  # noqa: S608
        f"m AS (DELETE FROM {mapping} WHERE {mapping_pk} IN (SELECT * FROM s) RETURNING {key}), "
        f"d AS (DELETE FROM {sessions} WHERE {session_key} IN (SELECT {key} FROM m)) "
        f"SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM m), {keys}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        selected, deleted, evict = cursor.fetchone()
    if evict:
        # cached_db: the rows are gone, their cached copies must go too.
        _evict(evict, using)
    return int(selected), int(deleted)


def _evict(keys: Sequence[str], using: str | None) -> None:
    """Delete the cached copies of the sessions `keys` now, and again once `using` commits.

    `using` is the database the rows were deleted from (None: the engine has no table).
    """
    # Now: should the process die between the commit and its on-commit hooks, the
    # copies cached before the delete are gone anyway.
    _delete_cached(keys)
    if using is not None and connections[using].in_atomic_block:
        # After the commit: a request in between still saw the row and cached it again.
        transaction.on_commit(partial(_evict_after_commit, list(keys)), using=using, robust=True)


def _evict_after_commit(keys: list[str]) -> None:
    """Delete cached copies once the deletion is visible; a failure is logged, not raised."""
    try:
        _delete_cached(keys)
    except Exception:
        logger.exception(
            "revocation: could not evict %d cached sessions after commit; a copy cached "
            "between the delete and the commit lives until it expires",
            len(keys),
        )


def _delete_cached(keys: Sequence[str]) -> None:
    """Delete the cached copies of the sessions `keys`."""
    prefix = engines.cache_key_prefix() or ""
    caches[settings.SESSION_CACHE_ALIAS].delete_many([prefix + key for key in keys])
