"""The beat schedule: the one place periodic tasks are defined.

`install()` upserts these into django-celery-beat (setup_schedule command,
run by `make run` and the Procfile release step) and removes retired ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from revocation.app_settings import app_settings

# Every periodic task we ever installed has a name with this prefix; any such
# row not in schedule() is retired and removed on install.
PREFIX = "revocation."


@dataclass(frozen=True)
class Entry:
    """One periodic task: a name, the task it runs, and when."""

    name: str
    task: str
    every_seconds: int | None = None
    crontab: str | None = None  # "minute hour day_of_month month_of_year day_of_week"


def schedule() -> list[Entry]:
    """Return the periodic tasks of this service."""
    return [
        # Re-enqueue revocation requests whose publish failed or that stalled.
        Entry(
            name="revocation.sweep_outbox",
            task="revocation.sweep_outbox",
            every_seconds=app_settings.SWEEP_INTERVAL,
        ),
        # Delete expired sessions in batches, then prune orphaned mappings and old
        # requests: nightly at 03:17 UTC, off the hour when other cron jobs pile up.
        Entry(
            name="revocation.clearsessions",
            task="revocation.clearsessions",
            crontab="17 3 * * *",
        ),
        # Prune mappings whose session is gone, expired or someone else's, so "your
        # sessions" pages and revocations stay accurate between two clearsessions.
        Entry(
            name="revocation.prune_orphans",
            task="revocation.prune_orphans",
            every_seconds=3600,
        ),
    ]
