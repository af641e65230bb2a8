"""MariaDB/MySQL: expiry and orphans by key windows, `GET_LOCK` locks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connections, transaction

from ..models import RevocationFence, UserSession
from .names import db_datetime, quoted
from .portable import Dialect, Step, db_values, from_db_values


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

    # A failed statement is undone alone (a deadlock rolls back everything, savepoint or not).
    failure_aborts_transaction = False

    def upsert_link(self, values: dict[str, Any]) -> None:
        """One `INSERT ... ON DUPLICATE KEY UPDATE`: no transaction, so no BEGIN/COMMIT either.

        It fires on any unique key; session_key is the only one we insert.
        """
        table, key, *columns = quoted(self.connection, UserSession, "session_key", *values)
        new, updates = self._new_row([c for c in columns if c != key])
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * len(columns))}) {new}"
            f"ON DUPLICATE KEY UPDATE {', '.join(f'{c} = {v}' for c, v in updates.items())}"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, db_values(self.connection, UserSession, values))

    def raise_fences(self, keys: list[str], at: datetime) -> dict[str, datetime]:
        """An `INSERT ... ON DUPLICATE KEY UPDATE` keeping `GREATEST(stored, new)`, then a read.

        The read is of rows this transaction has just locked, so it sees what the
        upsert left. Not MariaDB's RETURNING: its manual promises the inserted rows,
        not what a duplicate's update leaves.
        """
        table, key, not_before = quoted(self.connection, RevocationFence, "key", "not_before")
        value = db_values(self.connection, RevocationFence, {"not_before": at})[0]
        new, updates = self._new_row([not_before])
        stored: dict[str, Any] = {}
        for chunk in self._chunks(RevocationFence, ["key", "not_before"], keys):
            sql = (
                f"INSERT INTO {table} ({key}, {not_before}) "  # noqa: S608
                f"VALUES {', '.join(['(%s, %s)'] * len(chunk))} {new}"
                f"ON DUPLICATE KEY UPDATE "
                f"{not_before} = GREATEST({table}.{not_before}, {updates[not_before]})"
            )
            with self.connection.cursor() as cursor:
                cursor.execute(sql, [p for k in chunk for p in (k, value)])
                stored.update(self._read_fences(cursor, chunk))
        return from_db_values(self.connection, RevocationFence, "not_before", stored)

    def _new_row(self, columns: list[str]) -> tuple[str, dict[str, str]]:
        """Return the clause naming the row being inserted, and how to read each of `columns`.

        MariaDB reads it with VALUE(col); MySQL 8.0.19+ with a row alias (VALUES() is
        deprecated there from 8.0.20), as Django's own bulk_create does.
        """
        connection: Any = self.connection
        if not connection.mysql_is_mariadb and connection.mysql_version >= (8, 0, 19):
            return "AS new ", {c: f"new.{c}" for c in columns}
        function = "VALUE" if connection.mysql_is_mariadb else "VALUES"
        return "", {c: f"{function}({c})" for c in columns}


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
