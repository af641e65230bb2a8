"""Delete sessions with their mapping rows: one statement where the database allows it.

How each engine deletes a session (and evicts its cached copies) is the
engine strategy's business (`engines`); the statements are `sql`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import router
from django.db.models import QuerySet
from django.db.models.deletion import Collector

from . import engines, sql
from .models import UserSession


def delete_sessions(keys: Sequence[str]) -> int:
    """Delete the sessions `keys` everywhere the engine keeps them; return table rows deleted."""
    return engines.current().delete(keys) if keys else 0


def delete_mapped(rows: QuerySet[UserSession], *, limit: int) -> tuple[int, bool]:
    """Delete at most `limit` of the mapping rows `rows` (a filtered queryset) and their sessions.

    Returns (mapping rows deleted, whether none of `rows` is left): fewer deleted
    than there were means another worker got there first.
    """
    using = router.db_for_write(UserSession)
    engine = engines.current()
    if _one_database(engine, using):
        done = sql.dialect(using).delete_mapped(
            rows,
            engine.session_model(),
            limit=limit,
            return_keys=engine.cache_key_prefix is not None,
        )
        if done is not None:
            deleted, finished, keys = done
            if keys:
                # cached_db: the rows are gone, their cached copies must go too.
                engine.evict(keys, using=using)
            return deleted, finished
    # One more than `limit`: whether any are left, without a statement that finds none.
    pairs = list(rows.order_by().values_list("pk", "session_key")[: limit + 1])
    page = pairs[:limit]
    delete_sessions([key for _, key in page])
    deleted = UserSession.objects.filter(pk__in=[pk for pk, _ in page]).delete()[0]
    return deleted, len(pairs) <= limit


def _one_database(engine: engines.Engine, using: str) -> bool:
    """Return whether sessions live in a table on `using` that one DELETE can clear."""
    if not engine.has_table:
        return False
    model = engine.session_model()
    return router.db_for_write(model) == using and Collector(using=using).can_fast_delete(
        model._base_manager.all()
    )
