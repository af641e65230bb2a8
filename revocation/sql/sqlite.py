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
