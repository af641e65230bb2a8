"""Query expressions written as SQL: a vendor's own form, or cheaper than the ORM's own."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db.models import BooleanField, Expression, Lookup
from django.db.models.lookups import In

from .names import db_datetime, quoted


class AnyOf(Lookup):  # type: ignore[type-arg]
    """`lhs` is one of the values `rhs` (a list): `IN (...)`, or `= ANY(array)` on PostgreSQL.

    One array parameter instead of one per value: a page of 5,000 user ids written
    out as `IN (%s, ...)` cost 40 ms of Python per page, twice (Django builds the
    list, psycopg splits the query string at each placeholder), against a
    70 ms delete (bench/bulk_revoke.py).
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        sql, params = In(self.lhs, self.rhs).as_sql(compiler, connection)
        return sql, list(params)

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*params, list(self.rhs)]


class Stored(Expression):
    """The session with key `key` is in `session_model`'s table and expires after `now`.

    What `Exists(Session.objects.filter(session_key=OuterRef(...), expire_date__gt=now))`
    says, written as a scalar subquery on the session's primary key. Building and
    compiling the ORM's Exists took 340 us of Python of each 1.1 ms lookup of a user's
    sessions, this takes 60; and PostgreSQL plans it as a probe per row instead of
    weighing semi-joins: 0.05 ms of planning instead of 0.14 (bench/lookup.py data).
    `key` is an expression of the outer query (F("session_key")), compiled by Django,
    so the outer query may still be relabelled as a subquery.
    """

    output_field = BooleanField()

    def __init__(self, key: Any, session_model: Any, now: datetime) -> None:
        super().__init__(output_field=BooleanField())
        self.key, self.session_model, self.now = key, session_model, now

    def get_source_expressions(self) -> list[Any]:
        return [self.key]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.key,) = exprs

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        key, params = compiler.compile(self.key)
        table, pk, expire = quoted(connection, self.session_model, "pk", "expire_date")
        live = connection.ops.quote_name("revocation_live")
        # No row (deleted) is NULL, and NULL > now is not true: the same as NOT EXISTS.
        sql = f"(SELECT {live}.{expire} FROM {table} {live} WHERE {live}.{pk} = {key}) > %s"  # noqa: S608
        return sql, [*params, db_datetime(connection, self.now)]
