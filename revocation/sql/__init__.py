"""Every raw SQL statement of the app, one module per database vendor.

The vendor is chosen here, from `connection.vendor`, and nowhere else:
`dialect(using)` returns PostgreSQL's or SQLite's statements, or the portable
ORM batches for any other database. Table and column names come from the
models' `_meta` (`names.quoted`).
"""

from __future__ import annotations

from django.db import connections

from .names import db_datetime, quoted
from .portable import Dialect, Step, delete_in_batches
from .postgresql import PostgreSQL, advisory_unlock, try_advisory_lock
from .sqlite import SQLite

__all__ = [
    "Dialect",
    "Step",
    "advisory_unlock",
    "db_datetime",
    "delete_in_batches",
    "dialect",
    "ping",
    "quoted",
    "try_advisory_lock",
    "vendor",
]

_DIALECTS: dict[str, type[Dialect]] = {"postgresql": PostgreSQL, "sqlite": SQLite}


def vendor(using: str = "default") -> str:
    """Return the vendor of database `using` ("postgresql", "sqlite", "mysql", ...)."""
    return str(connections[using].vendor)


def dialect(using: str) -> Dialect:
    """Return the statements to run on database `using`: its vendor's, else the portable ones."""
    return _DIALECTS.get(vendor(using), Dialect)(using)


def ping(using: str = "default") -> None:
    """Run a trivial query on database `using`, raising if it cannot answer."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT 1")
