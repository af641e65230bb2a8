"""Delete expired sessions, a batch per short transaction, the way the session engine allows."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from .. import engines
from ._base import Progress, no_progress


def delete_expired_sessions(
    *, now: datetime, batch_size: int, progress: Progress | None = None
) -> int:
    """Delete sessions that expired before `now`, about `batch_size` per transaction."""
    step = partial(progress or no_progress, "sessions")
    return engines.current().clear_expired(now=now, batch_size=batch_size, step=step)
