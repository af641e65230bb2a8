"""What every database runs: the ORM in short batches, and the base of the vendor dialects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import connections, router, transaction
from django.db.models import QuerySet

from ..models import UserSession
from .names import db_datetime, quoted

Step = Callable[[int], None]
"""Called after every batch with the rows handled so far."""


def delete_in_batches(queryset: Any, batch: int, step: Step) -> int:
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
        step(deleted)
        if len(ids) < batch:
            return deleted


class Dialect:
    """The portable way for database `using`; a vendor's subclass overrides what it does faster."""

    def __init__(self, using: str) -> None:
        self.using = using
        self.connection = connections[using]

    def delete_mapped(
        self, rows: QuerySet[UserSession], session_model: Any, *, return_keys: bool
    ) -> tuple[int, int, list[str]] | None:
        """Delete the mappings `rows` and their sessions in one statement; None if it cannot.

        Returns (rows selected, mapping rows deleted, the deleted keys if `return_keys`).
        """
        return None

    def delete_expired(self, model: Any, now: datetime, batch: int, step: Step) -> int:
        """Delete sessions of `model` that expired before `now`, about `batch` per transaction."""
        expired = model._base_manager.using(self.using).filter(expire_date__lt=now)
        return delete_in_batches(expired, batch, step)

    def prune_orphans(
        self, session_model: Any, now: datetime, batch: int, step: Step
    ) -> int | None:
        """Delete mappings with no live session row, set-based; None if this database cannot."""
        return None

    def _delete_expired_by_index(self, model: Any, now: datetime, batch: int, step: Step) -> int:
        """Delete expired rows `batch` at a time through the expire_date index.

        Not for MySQL, which refuses LIMIT in an IN subquery.
        """
        table, pk, expire = quoted(self.connection, model, "pk", "expire_date")
        inner = f"SELECT {pk} FROM {table} WHERE {expire} < %s LIMIT %s"  # noqa: S608
        sql = f"DELETE FROM {table} WHERE {self._in(pk, inner)}"  # noqa: S608
        return self._delete_in_batches(sql, now, batch, step)

    def _delete_in_batches(self, sql: str, now: datetime, batch: int, step: Step) -> int:
        """Run `sql`, a DELETE of at most `batch` rows expired at `now`, until one comes up short.

        One transaction per batch, so no lock is held for longer than one batch.
        """
        deleted = 0
        while True:
            with transaction.atomic(using=self.using), self.connection.cursor() as cursor:
                cursor.execute(sql, [db_datetime(self.connection, now), batch])
                count = cursor.rowcount
            deleted += count
            step(deleted)
            if count < batch:
                return deleted

    def _prune_orphans_by_window(
        self, session_model: Any, now: datetime, batch: int, step: Step
    ) -> int:
        """Delete mappings with no live session row, one id window of `batch` rows at a time.

        An anti-join per primary-key range: no keys travel to Python, and each window is
        found by the index, so the cost does not grow with the rows already pruned.
        """
        connection = self.connection
        mapping, pk, key = quoted(connection, UserSession, "pk", "session_key")
        sessions, session_key, expire = quoted(connection, session_model, "pk", "expire_date")
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
            with transaction.atomic(using=self.using), connection.cursor() as cursor:
                cursor.execute(delete, [cursor_id, upper, db_datetime(connection, now)])
                pruned += cursor.rowcount
            step(pruned)
            if row is None:
                return pruned
            cursor_id = upper

    def _in(self, column: str, subquery: str) -> str:
        """Return the condition "`column` is one of the rows of `subquery`"."""
        return f"{column} IN ({subquery})"
