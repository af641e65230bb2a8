"""What the maintenance steps share: the progress callback and batched deletes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import connections, router, transaction

from .. import engines

Progress = Callable[[str, int], None]
"""Called after every batch with the phase name and the rows handled so far in it."""


def delete_in_batches(queryset: Any, batch: int, phase: str, progress: Progress) -> int:
    """Delete the rows of `queryset`, `batch` per short transaction; return how many."""
    model = queryset.model
    using = router.db_for_write(model)
    queryset = queryset.using(using).order_by()
    deleted = 0
    while True:
        with transaction.atomic(using=using):
            ids = list(queryset.values_list("pk", flat=True)[:batch])
            if ids:
                # Through the queryset: a row that stopped matching meanwhile stays.
                deleted += queryset.filter(pk__in=ids).delete()[1].get(model._meta.label, 0)
        progress(phase, deleted)
        if len(ids) < batch:
            return deleted


def cache_prefix() -> str | None:
    """Return the cache key prefix of a cache-only engine (None for table engines)."""
    return None if engines.has_table() else engines.cache_key_prefix()


def db_datetime(using: str, value: datetime) -> Any:
    """Return `value` as the database stores datetimes (naive UTC text on SQLite)."""
    return connections[using].ops.adapt_datetimefield_value(value)


def no_progress(phase: str, done: int) -> None:
    """Report nothing."""
