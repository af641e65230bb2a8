"""Make the real database refuse one write, to test what a failing statement does.

No mock: a CHECK constraint (PostgreSQL, MariaDB/MySQL) or a trigger (SQLite,
which cannot add a constraint to a table) rejects rows whose column holds one
value, so the statement fails on the server exactly as an outage would fail it.
Only for transactional tests: the DDL commits (MySQL) or locks the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection

from revocation.sql import quoted

_NAME = "revocation_test_refusal"


@contextmanager
def refusing(model: Any, field: str, value: str) -> Iterator[None]:
    """Make every INSERT or UPDATE that leaves `value` in `field` of `model` fail, meanwhile."""
    table, column = quoted(connection, model, field)
    literal = "'" + value.replace("'", "''") + "'"
    if connection.vendor == "sqlite":
        create = [
            f"CREATE TRIGGER {_NAME}_{event} BEFORE {event} ON {table} "
            f"WHEN NEW.{column} = {literal} BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            for event in ("INSERT", "UPDATE")
        ]
        drop = [f"DROP TRIGGER {_NAME}_{event}" for event in ("INSERT", "UPDATE")]
    else:
        create = [f"ALTER TABLE {table} ADD CONSTRAINT {_NAME} CHECK ({column} <> {literal})"]
        drop = [f"ALTER TABLE {table} DROP CONSTRAINT {_NAME}"]
    with connection.cursor() as cursor:
        for sql in create:
            cursor.execute(sql)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for sql in drop:
                cursor.execute(sql)
