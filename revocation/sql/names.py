"""Table and column names for raw SQL: read from the models' `_meta`, quoted for the vendor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper


def quoted(connection: BaseDatabaseWrapper, model: Any, *fields: str) -> tuple[str, ...]:
    """Return the quoted table of `model`, then the quoted column of each field ("pk" too)."""
    meta = model._meta
    columns = [meta.pk.column if name == "pk" else meta.get_field(name).column for name in fields]
    return tuple(connection.ops.quote_name(name) for name in [meta.db_table, *columns])


def db_datetime(connection: BaseDatabaseWrapper, value: datetime) -> Any:
    """Return `value` as the database stores datetimes (naive UTC text on SQLite)."""
    return connection.ops.adapt_datetimefield_value(value)
