"""SQLite: expiry through the expire_date index, orphans by an anti-join per id window."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .portable import Dialect, Step


class SQLite(Dialect):
    """Batched statements that never load keys into Python."""

    def delete_expired(self, model: Any, now: datetime, batch: int, step: Step) -> int:
        return self._delete_expired_by_index(model, now, batch, step)

    def prune_orphans(self, session_model: Any, now: datetime, batch: int, step: Step) -> int:
        return self._prune_orphans_by_window(session_model, now, batch, step)

    # A failed statement is undone alone; the transaction around it goes on.
    failure_aborts_transaction = False

    def upsert_link(self, values: dict[str, Any]) -> None:
        """One `INSERT ... ON CONFLICT DO UPDATE` (SQLite 3.24+)."""
        self._upsert_link_on_conflict(values)

    def raise_fences(self, keys: list[str], at: datetime) -> dict[str, datetime]:
        """One upsert keeping `MAX(stored, new)`, returning the rows (SQLite 3.35+; else read back).

        Datetimes are ISO text here, so MAX() compares them in time order.
        """
        returning = bool(self.connection.features.can_return_columns_from_insert)
        return self._raise_fences_on_conflict(keys, at, greatest="MAX", returning=returning)
