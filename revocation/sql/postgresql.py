"""PostgreSQL: one-statement revocation pages, expiry by heap-page ranges, advisory locks."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connections, transaction
from django.db.models import Model, QuerySet, signals
from django.db.models.sql import InsertQuery
from django.db.models.sql.subqueries import DeleteQuery

from ..models import RevocationFence, UserSession
from .names import db_datetime, quoted
from .portable import MOVED_FIELDS, Dialect, Step, db_values, field, from_db_values

# Upper bound of the heap pages one ctid batch scans (8 kB each): 32 MB of reading.
MAX_PAGES_PER_BATCH = 4096
# Maintenance batches commit without waiting for their WAL to reach disk: see
# PostgreSQL._batch.
SKIP_FLUSH_WAIT = "SET LOCAL synchronous_commit TO OFF"
# More fences than this are not written in the request row's statement (a huge
# user list): they take raise_fences()' batches in a transaction instead.
MAX_FENCES_PER_STATEMENT = 1000


class PostgreSQL(Dialect):
    """Set-based statements that keep keys out of Python and batches in physical order."""

    def delete_mapped(
        self, rows: QuerySet[UserSession], session_model: Any, *, limit: int, return_keys: bool
    ) -> tuple[int, bool, list[str]] | None:
        """Delete at most `limit` of the mappings `rows` (filtered) and their sessions.

        No keys travel to Python: shipping a page's keys out and back as two 5,000-item
        IN lists costs about four times the deletes themselves. Usually one statement
        deletes them all, straight through the index on `rows`' filter: it counts up to
        `limit` + 1 of them first, in the same snapshot, and deletes only if they fit.
        Selecting the ids first (ORDER BY pk LIMIT) and deleting by id cost a sort and a
        primary-key probe per row: a page took 1.25x the bare DELETE (bench/bulk_revoke.py).
        """
        connection = self.connection
        mapping, mapping_pk, key = quoted(connection, UserSession, "pk", "session_key")
        sessions, session_key = quoted(connection, session_model, "pk")
        keys = f"(SELECT array_agg({key}) FROM m)" if return_keys else "NULL"  # noqa: S608
        # `IN (SELECT ... FROM m)`, not a join (`USING m`): joined, the planner hashes the
        # whole session table once a page is a few percent of it: 1.1-1.5x the time of a
        # probe per key at 1M sessions and 5000 users a page, and more with every session.
        then = (
            f"d AS (DELETE FROM {sessions} WHERE {session_key} IN (SELECT {key} FROM m)) "  # noqa: S608
            f"SELECT (SELECT count(*) FROM m), {keys}"
        )
        rows = rows.order_by()
        few, few_params = rows.values("pk")[: limit + 1].query.get_compiler(self.using).as_sql()
        delete, delete_params = rows.query.chain(DeleteQuery).get_compiler(self.using).as_sql()
        whole = (
            f"WITH c AS (SELECT count(*) AS n FROM ({few}) f), "  # noqa: S608
            f"m AS ({delete} AND (SELECT n FROM c) <= %s RETURNING {key}), "
            f"{then}, (SELECT n FROM c)"
        )
        with connection.cursor() as cursor:
            cursor.execute(whole, [*few_params, *delete_params, limit])
            deleted, deleted_keys, found = cursor.fetchone()
            if found > limit:
                # More than `limit` (a user with a great many sessions): `limit` of them,
                # by id. Not ORDER BY pk: that would sort all of them every time.
                some, some_params = (
                    rows.values("pk")[:limit].query.get_compiler(self.using).as_sql()
                )
                cursor.execute(
                    f"WITH m AS (DELETE FROM {mapping} WHERE {mapping_pk} IN ({some}) "  # noqa: S608
                    f"RETURNING {key}), {then}",
                    some_params,
                )
                deleted, deleted_keys = cursor.fetchone()
        return int(deleted), found <= limit, list(deleted_keys or [])

    def delete_expired(self, model: Any, now: datetime, batch: int, step: Step) -> int:
        """Delete expired rows in physical order, one range of heap pages per batch.

        Expiry order is random on disk, so batches keyed by expire_date or key touch
        random pages: 17-20 s for 900k rows against 1.9 s by ctid range
        (PERF-BASELINES §2), and Django's single DELETE is about as fast.

        A batch is a range of whole pages, sized from the share of expired rows in
        the previous range to hold about `batch` of them. It grows at most twofold
        per step, and never past the pages that `4 * batch` live rows fill, so a
        dense stretch after a sparse one still makes a bounded transaction. (A
        LIMIT per range would cap it exactly, at 1.4x the time.)
        """
        table, expire = quoted(self.connection, model, "expire_date")
        size = self._table_size(table)
        if size is None:
            return self._delete_expired_by_index(model, now, batch, step)
        pages, rows_per_page = size
        sql = (
            f"DELETE FROM {table} WHERE ctid >= %s::tid AND ctid < %s::tid "  # noqa: S608
            f"AND {expire} < %s"
        )
        # Start as if every row had expired: the first batch cannot be too big.
        span = max(1, math.ceil(batch / rows_per_page))
        widest = max(1, min(MAX_PAGES_PER_BATCH, math.ceil(4 * batch / rows_per_page)))
        start = deleted = 0
        while True:
            if start >= pages:
                # Logins during the run may have grown the table: finish the new pages too.
                pages = (self._table_size(table) or (0, 0))[0]
                if start >= pages:
                    return deleted
            end = start + span
            with self._batch() as cursor:
                cursor.execute(
                    sql, [f"({start},0)", f"({end},0)", db_datetime(self.connection, now)]
                )
                count = cursor.rowcount
            deleted += count
            step(deleted)
            start = end
            wanted = math.ceil(batch * span / count) if count else MAX_PAGES_PER_BATCH
            span = max(1, min(wanted, span * 2, widest))

    def prune_orphans(self, session_model: Any, now: datetime, batch: int, step: Step) -> int:
        """Find every orphan with one read-only anti-join, then delete them `batch` at a time.

        Checking each mapping row with its own probe into the session table costs a
        random heap read per row (about 25 µs once the tables outgrow
        shared_buffers: 12 s for 500k mappings); one hash anti-join reads each
        table once (about 1 s). The orphans wait in a temporary table (server
        side, on this connection) in physical order, so each batch deletes from
        neighbouring pages, reached by TID scan. A row goes only if it is still the
        same row with the same key: a mapping that moved to a new key meanwhile stays.
        """
        connection = self.connection
        mapping, pk, key = quoted(connection, UserSession, "pk", "session_key")
        sessions, session_key, expire = quoted(connection, session_model, "pk", "expire_date")
        snapshot = connection.ops.quote_name("revocation_orphans")
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{snapshot}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {snapshot} AS "  # noqa: S608
                f"SELECT m.ctid AS tid, m.{pk} AS id, m.{key} AS skey "
                f"FROM {mapping} m WHERE NOT EXISTS (SELECT 1 FROM {sessions} s "
                f"WHERE s.{session_key} = m.{key} AND s.{expire} > %s)",
                [now],
            )
            cursor.execute(f"CREATE INDEX ON {snapshot} (tid)")
        step(0)
        delete = (
            f"WITH w AS (SELECT tid, id, skey FROM {snapshot} WHERE tid > %s::tid "  # noqa: S608
            f"ORDER BY tid LIMIT %s), d AS (DELETE FROM {mapping} m USING w "
            # ctid = ANY(array) makes it a TID scan: a bare join on ctid is planned as a
            # merge join walking the primary key from the start, batch after batch.
            f"WHERE m.ctid = ANY(ARRAY(SELECT tid FROM w)) "
            f"AND m.ctid = w.tid AND m.{pk} = w.id AND m.{key} = w.skey RETURNING 1) "
            "SELECT (SELECT max(tid) FROM w)::text, (SELECT count(*) FROM d)"
        )
        after, pruned = "(0,0)", 0
        try:
            while True:
                with self._batch() as cursor:
                    cursor.execute(delete, [after, batch])
                    last, count = cursor.fetchone()
                if last is None:
                    return pruned
                pruned += count
                step(pruned)
                after = last
        finally:
            # A broken connection took the temporary table with it.
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{snapshot}")

    @contextlib.contextmanager
    def _batch(self) -> Iterator[Any]:
        """One maintenance batch: a transaction whose commit does not wait for the WAL flush.

        A fsync per batch was a quarter of the expired-session phase (4-6 ms a commit,
        90 commits per million sessions). Safe for these deletes only: a commit lost in
        a crash leaves rows still expired or orphaned, which the next run deletes, and
        any later durable commit flushes the WAL before it, deletes included. SET LOCAL,
        not SET: the connection's next transaction (a revocation) waits again. Inside
        a caller's transaction the batch is no transaction of its own: left as it is.
        """
        own = not self.connection.in_atomic_block
        with transaction.atomic(using=self.using), self.connection.cursor() as cursor:
            if own:
                cursor.execute(SKIP_FLUSH_WAIT)
            yield cursor

    def _table_size(self, table: str) -> tuple[int, float] | None:
        """Return (heap pages, rows per page) of quoted `table`; None if it is not a plain table."""
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT relkind, pg_relation_size(oid) / current_setting('block_size')::int, "
                "reltuples, relpages FROM pg_class WHERE oid = to_regclass(%s)",
                [table],
            )
            row = cursor.fetchone()
        if row is None or row[0] != "r":
            # A partitioned table or a view: ctid ranges mean nothing there.
            return None
        _, pages, reltuples, relpages = row
        # Never analysed: assume rows of about 250 bytes (a login's session).
        rows_per_page = reltuples / relpages if relpages > 0 and reltuples > 0 else 30.0
        return int(pages), max(1.0, rows_per_page)

    def _in(self, column: str, subquery: str) -> str:
        return f"{column} = ANY(ARRAY({subquery}))"

    failure_aborts_transaction = True

    def upsert_link(self, values: dict[str, Any]) -> None:
        """One `INSERT ... ON CONFLICT DO UPDATE`: no transaction, so no BEGIN/COMMIT either."""
        self._upsert_link_on_conflict(values)

    def move_link(self, old_key: str, values: dict[str, Any]) -> None:
        """Move the mapping of `old_key` in one statement: a login from an anonymous session too.

        The UPDATE moves the same user's row (keeping id, sign-in time and sign-in
        id); the DELETE drops another user's; the upsert runs only if nothing moved.
        The three touch disjoint rows, so one snapshot serves them all.
        """
        connection = self.connection
        table, key, user = quoted(connection, UserSession, "session_key", "user_id")
        columns = quoted(connection, UserSession, *values)[1:]
        params = dict(zip(values, db_values(connection, UserSession, values), strict=True))
        moved = [name for name in values if name in MOVED_FIELDS]
        sets = ", ".join(
            f"{c} = %s" for name, c in zip(values, columns, strict=True) if name in moved
        )
        # Typed: a bare parameter in a SELECT list is text, and text is no inet.
        typed = ", ".join(
            f"CAST(%s AS {field(UserSession, name).cast_db_type(connection)})" for name in values
        )
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != key)
        sql = (
            f"WITH moved AS (UPDATE {table} SET {sets} "  # noqa: S608
            f"WHERE {key} = %s AND {user} = %s RETURNING 1), "
            f"dropped AS (DELETE FROM {table} WHERE {key} = %s AND {user} <> %s) "
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {typed} "
            "WHERE NOT EXISTS (SELECT FROM moved) "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
        )
        uid = params["user_id"]
        with connection.cursor() as cursor:
            cursor.execute(
                sql,
                [*(params[n] for n in moved), old_key, uid, old_key, uid, *params.values()],
            )

    def insert_with_fences(
        self, row: Model, keys: list[str], at: datetime
    ) -> dict[str, datetime] | None:
        """Insert `row` and upsert its fences in one statement: two data-modifying CTEs.

        What save() does around the INSERT is done here too: pre_save and post_save
        (created) are sent, and `row` gets its id. A row with an id, or more fences
        than one statement takes, is left to the caller (None).
        """
        meta = row._meta
        if row.pk is not None or not keys or len(keys) > MAX_FENCES_PER_STATEMENT:
            return None
        fields = [
            f
            for f in meta.local_concrete_fields
            if f is not meta.auto_field and not getattr(f, "generated", False)
        ]
        model = type(row)
        signals.pre_save.send(
            sender=model, instance=row, raw=False, using=self.using, update_fields=None
        )
        query = InsertQuery(model)
        query.insert_values(fields, [row])
        compiler: Any = query.get_compiler(using=self.using)
        compiler.returning_fields = [meta.pk]
        ((insert, insert_params),) = compiler.as_sql()
        upsert, upsert_params = self._fence_upsert(keys, at, greatest="GREATEST")
        _, key, not_before = quoted(self.connection, RevocationFence, "key", "not_before")
        sql = (
            f"WITH r AS ({insert}), f AS ({upsert} RETURNING {key}, {not_before}) "  # noqa: S608
            f"SELECT (SELECT * FROM r), {key}, {not_before} FROM f"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [*insert_params, *upsert_params])
            rows = cursor.fetchall()
        row.pk = rows[0][0]
        row._state.adding = False
        row._state.db = self.using
        signals.post_save.send(
            sender=model,
            instance=row,
            created=True,
            update_fields=None,
            raw=False,
            using=self.using,
        )
        stored = {k: v for _, k, v in rows}
        return from_db_values(self.connection, RevocationFence, "not_before", stored)

    def raise_fences(self, keys: list[str], at: datetime) -> dict[str, datetime]:
        """One `INSERT ... ON CONFLICT DO UPDATE SET not_before = GREATEST(...) RETURNING`."""
        return self._raise_fences_on_conflict(keys, at, greatest="GREATEST", returning=True)


def try_advisory_lock(using: str, key: int) -> bool:
    """Take session-level advisory lock `key` on `using` if it is free; return whether we did."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        return bool(cursor.fetchone()[0])


def advisory_unlock(using: str, key: int) -> None:
    """Release advisory lock `key` on `using`."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
