"""SQLite: expiry through the expire_date index, orphans by an anti-join per id window."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction

from ..models import UserSession
from .names import db_datetime, quoted
from .portable import Dialect, Step


class SQLite(Dialect):
    """Batched statements that never load keys into Python."""

    def delete_expired(self, model: Any, now: datetime, batch: int, step: Step) -> int:
        return self._delete_expired_by_index(model, now, batch, step)

    def prune_orphans(self, session_model: Any, now: datetime, batch: int, step: Step) -> int:
        """Delete mappings with no live session row, one id window of `batch` rows at a time."""
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
