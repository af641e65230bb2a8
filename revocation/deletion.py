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


def delete_mapped(rows: QuerySet[UserSession]) -> tuple[int, int]:
    """Delete the mapping rows `rows` (a sliced queryset) and their sessions.

    Returns (rows selected, mapping rows deleted): fewer deleted than selected
    means another worker got there first.
    """
    using = router.db_for_write(UserSession)
    engine = engines.current()
    if _one_database(engine, using):
        done = sql.dialect(using).delete_mapped(
            rows, engine.session_model(), return_keys=engine.cache_key_prefix is not None
        )
        if done is not None:
            selected, deleted, keys = done
            if keys:
                # cached_db: the rows are gone, their cached copies must go too.
                engine.evict(keys, using=using)
            return selected, deleted
    pairs = list(rows.values_list("pk", "session_key"))
    delete_sessions([key for _, key in pairs])
    deleted = UserSession.objects.filter(pk__in=[pk for pk, _ in pairs]).delete()[0]
    return len(pairs), deleted


def _one_database(engine: engines.Engine, using: str) -> bool:
    """Return whether sessions live in a table on `using` that one DELETE can clear."""
    if not engine.has_table:
        return False
    model = engine.session_model()
    return router.db_for_write(model) == using and Collector(using=using).can_fast_delete(
        model._base_manager.all()
    )
