"""What the maintenance steps share: the progress callback and batched deletes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import connections, transaction

from .. import engines

logger = logging.getLogger("revocation")


Progress = Callable[[str, int], None]
"""Called after every batch with the phase name and the rows handled so far in it."""


def delete_in_batches(queryset: Any, batch: int, phase: str, progress: Progress) -> int:
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


def cache_prefix() -> str | None:
    """Return the cache key prefix of a cache-only engine (None for table engines)."""
    if engines.has_table():
        return None
    return getattr(engines.store_class(), "cache_key_prefix", None)


def db_datetime(using: str, value: datetime) -> Any:
    """Return `value` as the database stores datetimes (naive UTC text on SQLite)."""
    return connections[using].ops.adapt_datetimefield_value(value)


def no_progress(phase: str, done: int) -> None:
    """Report nothing."""
