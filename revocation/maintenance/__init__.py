"""Scheduled upkeep: delete expired sessions, prune orphaned mappings, requests and fences.

Also erases the personal data of old finished requests (REVOCATION_AUDIT_PERSONAL_DATA_DAYS).

Every delete is batched, each batch its own short transaction, so memory stays
flat and no row stays locked for long whatever the backlog. Each job runs
under a lock of its own (`locks`): a second concurrent run logs and skips.
What each session engine can clear is the engine strategy's (`engines`); the
vendor statements that do it are `sql`'s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from .. import engines, locks
from ..app_settings import app_settings
from ._base import Progress
from .expired import delete_expired_sessions
from .orphans import OWNER_CURSOR_KEY, check_owners, prune_mappings
from .retention import erase_personal_data, prune_fences, prune_requests

logger = logging.getLogger("revocation")

__all__ = [
    "OWNER_CURSOR_KEY",
    "PHASES",
    "Progress",
    "Summary",
    "clearsessions",
    "delete_expired_sessions",
    "engine_notes",
    "erase_personal_data",
    "prune_fences",
    "prune_mappings",
    "prune_orphans",
    "prune_requests",
]

PHASES = {
    "sessions": "expired sessions deleted",
    "mappings": "orphaned mappings pruned",
    "owners": "mapping owners checked",
    "requests": "finished requests pruned",
    "erasure": "finished requests' personal data erased",
    "fences": "expired fences pruned",
}


@dataclass
class Summary:
    """What one maintenance run did."""

    sessions_deleted: int = 0
    mappings_pruned: int = 0
    mappings_relinked: int = 0
    requests_pruned: int = 0
    requests_erased: int = 0
    fences_pruned: int = 0
    seconds: float = 0.0
    skipped: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-safe data."""
        return asdict(self)


# --- The two scheduled jobs (also the management command) ------------------------


def clearsessions(
    *,
    batch_size: int | None = None,
    verify_owners: bool = False,
    progress: Progress | None = None,
) -> Summary:
    """Delete expired sessions, then prune orphaned mappings, old requests and old fences."""
    batch = batch_size or app_settings.MAINTENANCE_BATCH_SIZE

    def work(step: Progress) -> Summary:
        now = timezone.now()
        summary = Summary(notes=engine_notes())
        summary.sessions_deleted = delete_expired_sessions(now=now, batch_size=batch, progress=step)
        owners = None if verify_owners else 0
        return _prune(summary, now=now, batch=batch, owner_limit=owners, progress=step)

    return _run_locked("revocation.clearsessions", work, progress)


def prune_orphans(*, batch_size: int | None = None, progress: Progress | None = None) -> Summary:
    """Prune orphaned mappings (checking a slice of owners), old requests and old fences."""
    batch = batch_size or app_settings.MAINTENANCE_BATCH_SIZE

    def work(step: Progress) -> Summary:
        limit = app_settings.OWNER_CHECK_ROWS
        return _prune(Summary(), now=timezone.now(), batch=batch, owner_limit=limit, progress=step)

    return _run_locked("revocation.prune_orphans", work, progress)


def _prune(
    summary: Summary, *, now: datetime, batch: int, owner_limit: int | None, progress: Progress
) -> Summary:
    """Prune orphaned mappings, old requests and fences into `summary`.

    `owner_limit` is how many mapping owners to verify: None for all, 0 for none.
    """
    summary.mappings_pruned, summary.mappings_relinked = prune_mappings(
        now=now, batch_size=batch, progress=progress
    )
    if owner_limit is None or owner_limit > 0:
        pruned, relinked = check_owners(
            now=now, batch_size=batch, limit=owner_limit, progress=progress
        )
        summary.mappings_pruned += pruned
        summary.mappings_relinked += relinked
    summary.requests_pruned = prune_requests(now=now, batch_size=batch, progress=progress)
    summary.requests_erased = erase_personal_data(now=now, batch_size=batch, progress=progress)
    summary.fences_pruned = prune_fences(now=now, batch_size=batch, progress=progress)
    return summary


def _run_locked(
    name: str, work: Callable[[Progress], Summary], progress: Progress | None
) -> Summary:
    """Run `work` under lock `name`; if another run holds it, log and return a skipped summary."""
    started = time.monotonic()
    with locks.hold(name) as lock:
        if lock is None:
            logger.info("%s skipped: another run holds the %s lock", name, locks.backend_name())
            return Summary(skipped=True)

        phases: dict[str, int] = {}

        def step(phase: str, done: int) -> None:
            # Every batch proves we are alive, so a TTL lock never expires under a live run.
            lock.renew()
            if progress is not None:
                progress(phase, done)
                return
            # Nobody watches a scheduled run: log each phase's total as it ends.
            if phases and phase not in phases:
                _log_phase(name, *list(phases.items())[-1], started)
            phases[phase] = done

        summary = work(step)
        if phases:
            _log_phase(name, *list(phases.items())[-1], started)
    summary.seconds = time.monotonic() - started
    logger.info(
        "%s done: sessions_deleted=%d mappings_pruned=%d mappings_relinked=%d "
        "requests_pruned=%d requests_erased=%d fences_pruned=%d seconds=%.2f",
        name,
        summary.sessions_deleted,
        summary.mappings_pruned,
        summary.mappings_relinked,
        summary.requests_pruned,
        summary.requests_erased,
        summary.fences_pruned,
        summary.seconds,
    )
    return summary


def _log_phase(name: str, phase: str, done: int, started: float) -> None:
    """Log the total of a finished phase (the progress of a scheduled run)."""
    logger.info(
        "%s: %s %d (%.1f s into the run)",
        name,
        PHASES.get(phase, phase),
        done,
        time.monotonic() - started,
    )


def lock_name() -> str:
    """Return the name of the lock that keeps maintenance runs one at a time."""
    return locks.backend_name()


def engine_notes() -> list[str]:
    """Return what clearsessions can and cannot do with the configured session engine."""
    return engines.current().notes()
