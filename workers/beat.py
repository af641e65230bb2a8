"""Install workers/schedule.py into django-celery-beat, idempotently.

Each installed row remembers a fingerprint of its definition in its
description. A re-install rewrites a row only when the definition in code
changed, so an interval edited in the admin survives deploys; rows with our
prefix that the code no longer defines are deleted (beat would otherwise keep
running them forever, DESIGN §5).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from .schedule import PREFIX, Entry, schedule


@dataclass
class InstallResult:
    """What an install changed."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0


def _marker(entry: Entry) -> str:
    """Return the description that identifies this version of `entry`."""
    digest = hashlib.sha256(json.dumps(asdict(entry), sort_keys=True).encode()).hexdigest()[:12]
    return (
        f"Managed by workers/schedule.py (definition {digest}). Admin edits are kept "
        "until that definition changes."
    )


def _apply(task: PeriodicTask, entry: Entry) -> None:
    """Set the schedule fields of `task` from `entry`."""
    task.task = entry.task
    task.description = _marker(entry)
    task.enabled = True
    task.interval = None
    task.crontab = None
    if entry.every_seconds is not None:
        task.interval, _ = IntervalSchedule.objects.get_or_create(
            every=entry.every_seconds, period=IntervalSchedule.SECONDS
        )
    else:
        assert entry.crontab is not None, f"{entry.name} needs every_seconds or crontab"  # noqa: S101
        minute, hour, day_of_month, month_of_year, day_of_week = entry.crontab.split()
        task.crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
            timezone="UTC",
        )
    task.save()


@transaction.atomic
def install(entries: list[Entry] | None = None) -> InstallResult:
    """Upsert `entries` (default: the schedule) and delete retired ones."""
    entries = schedule() if entries is None else entries
    result = InstallResult()
    for entry in entries:
        task = PeriodicTask.objects.filter(name=entry.name).first()
        if task is None:
            _apply(PeriodicTask(name=entry.name), entry)
            result.created += 1
        elif task.description != _marker(entry):
            _apply(task, entry)
            result.updated += 1
        else:
            result.unchanged += 1
    retired = PeriodicTask.objects.filter(name__startswith=PREFIX).exclude(
        name__in=[e.name for e in entries]
    )
    result.removed = retired.delete()[0]
    return result
