"""MariaDB/MySQL: expiry and orphans by key windows, `GET_LOCK` locks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connections, transaction

from .names import db_datetime, quoted
from .portable import Dialect, Step


class MySQL(Dialect):
    """Batched single-table deletes: MySQL refuses LIMIT in an IN subquery."""

    def delete_expired(self, model: Any, now: datetime, batch: int, step: Step) -> int:
        """Delete expired rows in windows of `batch` keys, walking the primary key once.

        Not `DELETE ... ORDER BY expire_date LIMIT n`: InnoDB keeps deleted index
        entries until its purge catches up, and each batch rescanned those of the
        batches before it (31 s for 450,000 expired rows, bench/clearsessions.py).
        A window starts after the last key of the one before, so nothing is read twice.
        """
        table, pk, expire = quoted(self.connection, model, "pk", "expire_date")
        bound = f"SELECT {pk} FROM {table} WHERE {pk} > %s ORDER BY {pk} LIMIT 1 OFFSET %s"  # noqa: S608
        window = f"DELETE FROM {table} WHERE {pk} > %s AND {pk} <= %s AND {expire} < %s"  # noqa: S608
        rest = f"DELETE FROM {table} WHERE {pk} > %s AND {expire} < %s"  # noqa: S608
        expired_at = db_datetime(self.connection, now)
        after, deleted = "", 0
        while True:
            with transaction.atomic(using=self.using), self.connection.cursor() as cursor:
                cursor.execute(bound, [after, batch - 1])
                row = cursor.fetchone()
                if row is None:
                    cursor.execute(rest, [after, expired_at])
                else:
                    cursor.execute(window, [after, row[0], expired_at])
                deleted += cursor.rowcount
            step(deleted)
            if row is None:
                return deleted
            after = row[0]

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
