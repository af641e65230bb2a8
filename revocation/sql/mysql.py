"""MariaDB/MySQL: expiry by `DELETE ... LIMIT`, orphans by id window, `GET_LOCK` locks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connections

from .names import quoted
from .portable import Dialect, Step


class MySQL(Dialect):
    """Batched single-table deletes: MySQL refuses LIMIT in an IN subquery."""

    def delete_expired(self, model: Any, now: datetime, batch: int, step: Step) -> int:
        """Delete expired rows `batch` at a time, walking the expire_date index.

        One statement per batch, its LIMIT on the DELETE itself: no keys travel to
        Python, where the portable path selects a batch of keys and sends them back.
        """
        table, expire = quoted(self.connection, model, "expire_date")
        sql = f"DELETE FROM {table} WHERE {expire} < %s ORDER BY {expire} LIMIT %s"  # noqa: S608
        return self._delete_in_batches(sql, now, batch, step)

    def prune_orphans(self, session_model: Any, now: datetime, batch: int, step: Step) -> int:
        return self._prune_orphans_by_window(session_model, now, batch, step)


def get_lock(using: str, name: str) -> bool:
    """Take the named lock `name` on `using` if it is free; return whether we did."""
    with connections[using].cursor() as cursor:
        # Timeout 0: never wait. NULL (an error, e.g. the thread was killed) is "not taken".
        cursor.execute("SELECT GET_LOCK(%s, 0)", [name])
        return cursor.fetchone()[0] == 1


def release_lock(using: str, name: str) -> None:
    """Release the named lock `name` on `using`."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT RELEASE_LOCK(%s)", [name])
