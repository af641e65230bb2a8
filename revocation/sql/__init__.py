"""The app's vendor SQL, one module per database vendor.

The vendor is chosen here, from `connection.vendor`, and nowhere else:
`dialect(using)` returns PostgreSQL's, MariaDB/MySQL's or SQLite's
statements, or the portable ORM batches for any other database. Table and
column names come from the models' `_meta` (`names.quoted`).
"""

from __future__ import annotations

from django.db import connections

from .expressions import AnyOf, Stored
from .mysql import MySQL, get_lock, release_lock
from .names import quoted
from .portable import Dialect, Step, delete_in_batches
from .postgresql import PostgreSQL, advisory_unlock, try_advisory_lock
from .sqlite import SQLite

__all__ = [
    "AnyOf",
    "Stored",
    "Dialect",
    "Step",
    "advisory_unlock",
    "delete_in_batches",
    "dialect",
    "get_lock",
    "quoted",
    "release_lock",
    "try_advisory_lock",
    "vendor",
]

_DIALECTS: dict[str, type[Dialect]] = {"postgresql": PostgreSQL, "mysql": MySQL, "sqlite": SQLite}


def vendor(using: str = "default") -> str:
    """Return the vendor of database `using` ("postgresql", "sqlite", "mysql", ...)."""
    return str(connections[using].vendor)


def dialect(using: str) -> Dialect:
    """Return the statements to run on database `using`: its vendor's, else the portable ones."""
    return _DIALECTS.get(vendor(using), Dialect)(using)
