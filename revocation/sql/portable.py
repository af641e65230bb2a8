"""What every database runs: the ORM in short batches, and the base of the vendor dialects."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Model, QuerySet

from ..models import RevocationFence, UserSession
from .names import db_datetime, quoted

Step = Callable[[int], None]
"""Called after every batch with the rows handled so far."""

# What a key rotation rewrites on the mapping: not its sign-in time or sign-in id.
MOVED_FIELDS = (
    "session_key",
    "last_seen_at",
    "ip",
    "user_agent",
    "device",
    "country",
    "city",
)


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
        self, rows: QuerySet[UserSession], session_model: Any, *, limit: int, return_keys: bool
    ) -> tuple[int, bool, list[str]] | None:
        """Delete at most `limit` of the mappings `rows` and their sessions, set-based.

        Returns (mapping rows deleted, whether none of `rows` is left, the deleted keys
        if `return_keys`); None if this database cannot.
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

    # A failed statement aborts the whole transaction around it (PostgreSQL), rather
    # than only itself (SQLite, MySQL): a caller that must survive it needs a savepoint.
    # Unknown databases: assume the worst.
    failure_aborts_transaction = True

    def upsert_link(self, values: dict[str, Any]) -> None:
        """Insert the UserSession row `values` (attnames), or overwrite the row with its key.

        Here through the ORM, in a transaction of its own; a vendor with an upsert
        statement does it in that one statement.
        """
        features = self.connection.features
        UserSession.objects.using(self.using).bulk_create(
            [UserSession(**values)],
            update_conflicts=True,
            # MySQL's ON DUPLICATE KEY UPDATE takes no target; the key is the only unique one.
            unique_fields=["session_key"]
            if features.supports_update_conflicts_with_target
            else None,
            update_fields=[name for name in values if name != "session_key"],
        )

    def move_link(self, old_key: str, values: dict[str, Any]) -> None:
        """Move the mapping of `old_key` to the row `values` (a key rotation, or a login).

        The same user's row keeps its id, sign-in time and sign-in id; any other
        row of `old_key` goes, and `values` is upserted. Here up to three
        statements, each alone (every one records a fact that holds by itself).
        """
        moved = (
            UserSession.objects.using(self.using)
            .filter(session_key=old_key, user_id=values["user_id"])
            .update(**{k: v for k, v in values.items() if k in MOVED_FIELDS})
        )
        if not moved:
            self.delete_link(old_key)
            self.upsert_link(values)

    def delete_link(self, key: str) -> None:
        """Delete the mapping of session `key`: one DELETE (the ORM's would add BEGIN/COMMIT)."""
        table, column = quoted(self.connection, UserSession, "session_key")
        with self.connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE {column} = %s", [key])  # noqa: S608

    def insert_with_fences(
        self, row: Model, keys: list[str], at: datetime
    ) -> dict[str, datetime] | None:
        """Insert new `row` and `raise_fences(keys, at)` in one statement; None if it cannot.

        One statement is atomic without a transaction: no BEGIN or COMMIT. Returns
        what `raise_fences` returns; None means nothing was written (no signal sent).
        """
        return None

    def raise_fences(self, keys: list[str], at: datetime) -> dict[str, datetime]:
        """Move the fences of `keys` (distinct) up to `at`, never back; return what each holds.

        Here three statements (insert the new ones, raise the older ones, read back);
        a vendor with an upsert does it in one, or two where it cannot return rows.
        """
        fences = RevocationFence.objects.using(self.using)
        fences.bulk_create(
            [RevocationFence(key=k, not_before=at) for k in keys], ignore_conflicts=True
        )
        fences.filter(key__in=keys, not_before__lt=at).update(not_before=at)
        return dict(fences.filter(key__in=keys).values_list("key", "not_before"))

    def _upsert_link_on_conflict(self, values: dict[str, Any]) -> None:
        """`upsert_link` by one `INSERT ... ON CONFLICT DO UPDATE` (PostgreSQL, SQLite)."""
        table, key, *columns = quoted(self.connection, UserSession, "session_key", *values)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * len(columns))}) "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, db_values(self.connection, UserSession, values))

    def _raise_fences_on_conflict(
        self, keys: list[str], at: datetime, *, greatest: str, returning: bool
    ) -> dict[str, datetime]:
        """`raise_fences` by `INSERT ... ON CONFLICT (key) DO UPDATE` (PostgreSQL, SQLite).

        With `returning`, the same statement hands back the values it left; else they
        are read back (rows this transaction holds locked on PostgreSQL; SQLite has a
        single writer).
        """
        stored: dict[str, Any] = {}
        for chunk in self._chunks(RevocationFence, ["key", "not_before"], keys):
            sql, params = self._fence_upsert(chunk, at, greatest=greatest)
            with self.connection.cursor() as cursor:
                if returning:
                    _, key, not_before = quoted(
                        self.connection, RevocationFence, "key", "not_before"
                    )
                    cursor.execute(f"{sql} RETURNING {key}, {not_before}", params)
                    stored.update(cursor.fetchall())
                else:
                    cursor.execute(sql, params)
                    stored.update(self._read_fences(cursor, chunk))
        return from_db_values(self.connection, RevocationFence, "not_before", stored)

    def _fence_upsert(
        self, keys: list[str], at: datetime, *, greatest: str
    ) -> tuple[str, list[Any]]:
        """Return an upsert of fences `keys` at `at` (PostgreSQL, SQLite), and its parameters.

        The conflict branch takes `greatest` (the vendor's two-argument maximum) of the
        stored and the new time: it locks the row and reads its latest committed
        value, so a later fence committed meanwhile stays.
        """
        table, key, not_before = quoted(self.connection, RevocationFence, "key", "not_before")
        value = db_values(self.connection, RevocationFence, {"not_before": at})[0]
        sql = (
            f"INSERT INTO {table} ({key}, {not_before}) "  # noqa: S608
            f"VALUES {', '.join(['(%s, %s)'] * len(keys))} "
            f"ON CONFLICT ({key}) DO UPDATE SET "
            f"{not_before} = {greatest}({table}.{not_before}, excluded.{not_before})"
        )
        return sql, [p for k in keys for p in (k, value)]

    def _read_fences(self, cursor: Any, keys: list[str]) -> list[tuple[str, Any]]:
        """Return (key, raw not_before) of the stored fences among `keys`."""
        table, key, not_before = quoted(self.connection, RevocationFence, "key", "not_before")
        marks = ", ".join(["%s"] * len(keys))
        cursor.execute(
            f"SELECT {key}, {not_before} FROM {table} WHERE {key} IN ({marks})",  # noqa: S608
            keys,
        )
        return list(cursor.fetchall())

    def _chunks(
        self, model: type[Model], fields: list[str], rows: list[str]
    ) -> Iterator[list[str]]:
        """Yield `rows` in runs that fit one multi-row statement of `fields` of `model`."""
        batch = self.connection.ops.bulk_batch_size([field(model, f) for f in fields], rows)
        # At most 1000 rows: PostgreSQL's server-side binding takes 65,535 parameters.
        size = max(1, min(1000, batch))
        for start in range(0, len(rows), size):
            yield rows[start : start + size]


def field(model: type[Model], name: str) -> Any:
    """Return the concrete field `name` (or attname, e.g. "user_id") of `model`."""
    return model._meta.get_field(name)


def db_values(connection: Any, model: type[Model], values: dict[str, Any]) -> list[Any]:
    """Return `values` (field name or attname -> Python value) as `connection` stores them."""
    return [field(model, name).get_db_prep_save(v, connection) for name, v in values.items()]


def from_db_values(
    connection: Any, model: type[Model], name: str, values: dict[str, Any]
) -> dict[str, Any]:
    """Return raw column values of field `name` converted as the ORM would (dates, time zones)."""
    column = field(model, name)
    col = column.cached_col
    converters = connection.ops.get_db_converters(col) + column.get_db_converters(connection)
    converted = {}
    for k, value in values.items():
        for convert in converters:
            value = convert(value, col, connection)
        converted[k] = value
    return converted
