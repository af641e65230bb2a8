"""The beat schedule: defined once, installed idempotently, admin edits kept, retired rows gone."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from revocation import engines
from revocation.models import UserSession
from tests.support import wait_until
from workers import beat
from workers.schedule import Entry, schedule

NAMES = {"revocation.clearsessions", "revocation.prune_orphans", "revocation.sweep_outbox"}


def snapshot() -> list[tuple[Any, ...]]:
    """Return every stored field of every periodic task."""
    return list(PeriodicTask.objects.order_by("name").values_list())


def test_schedule_names_registered_tasks() -> None:
    from config.celery_app import app

    # What a worker does at start-up: autodiscover every app's tasks module.
    app.loader.import_default_modules()
    entries = {e.name: e for e in schedule()}
    assert set(entries) == NAMES
    for entry in entries.values():
        assert entry.task in app.tasks, entry.task
    assert entries["revocation.clearsessions"].crontab is not None
    assert entries["revocation.prune_orphans"].every_seconds == 3600


@pytest.mark.django_db
def test_installing_twice_is_a_no_op(settings: Any) -> None:
    settings.REVOCATION_SWEEP_INTERVAL = 30
    first = io.StringIO()
    call_command("setup_schedule", stdout=first)
    assert "3 created" in first.getvalue()
    before, changed = snapshot(), PeriodicTasks.last_change()

    second = io.StringIO()
    call_command("setup_schedule", stdout=second)

    assert "0 created, 0 updated, 3 unchanged, 0 retired removed" in second.getvalue()
    assert snapshot() == before
    # Beat is not told to reload a schedule that did not change.
    assert PeriodicTasks.last_change() == changed
    sweep = PeriodicTask.objects.get(name="revocation.sweep_outbox")
    assert (sweep.interval.every, sweep.interval.period) == (30, IntervalSchedule.SECONDS)
    nightly = PeriodicTask.objects.get(name="revocation.clearsessions")
    assert (nightly.crontab.minute, nightly.crontab.hour) == ("17", "3")


@pytest.mark.django_db
def test_a_retired_entry_is_removed_and_foreign_ones_are_kept() -> None:
    beat.install()
    every_minute, _ = IntervalSchedule.objects.get_or_create(
        every=60, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.create(
        name="revocation.retired_job", task="revocation.retired_job", interval=every_minute
    )
    PeriodicTask.objects.create(
        name="billing.invoices", task="billing.invoices", interval=every_minute
    )

    result = beat.install()

    assert result.removed == 1
    assert set(PeriodicTask.objects.values_list("name", flat=True)) == {*NAMES, "billing.invoices"}


@pytest.mark.django_db
def test_an_admin_edit_survives_a_reinstall_until_the_definition_changes() -> None:
    beat.install()
    prune = PeriodicTask.objects.get(name="revocation.prune_orphans")
    # What an operator does in the admin: another interval, and the nightly job paused.
    prune.interval, _ = IntervalSchedule.objects.get_or_create(
        every=2, period=IntervalSchedule.HOURS
    )
    prune.save()
    PeriodicTask.objects.filter(name="revocation.clearsessions").update(enabled=False)

    assert beat.install().updated == 0

    prune.refresh_from_db()
    assert (prune.interval.every, prune.interval.period) == (2, IntervalSchedule.HOURS)
    assert not PeriodicTask.objects.get(name="revocation.clearsessions").enabled

    # A new definition in code wins over the edit (and re-enables nothing else).
    changed = [
        e if e.name != "revocation.prune_orphans" else Entry(e.name, e.task, every_seconds=1800)
        for e in schedule()
    ]
    result = beat.install(changed)
    assert (result.updated, result.unchanged) == (1, 2)
    prune.refresh_from_db()
    assert (prune.interval.every, prune.interval.period) == (1800, IntervalSchedule.SECONDS)
    assert not PeriodicTask.objects.get(name="revocation.clearsessions").enabled


@pytest.mark.django_db(transaction=True)
def test_beat_runs_the_orphan_prune_on_a_real_worker(make_user: Any, start_worker: Any) -> None:
    user = make_user()
    live, gone = Client(), Client()
    live.force_login(user)
    gone.force_login(user)
    engines.store_class()().delete(gone.session.session_key)
    beat.install([Entry("revocation.prune_orphans", "revocation.prune_orphans", every_seconds=1)])

    worker = start_worker(beat=True)

    wait_until(
        lambda: not UserSession.objects.filter(session_key=gone.session.session_key).exists(),
        timeout=90,
        what="beat to run revocation.prune_orphans",
    )
    assert list(UserSession.objects.values_list("session_key", flat=True)) == [
        live.session.session_key
    ]
    wait_until(
        lambda: b"revocation.prune_orphans done" in worker.log.read_bytes(),
        timeout=30,
        what="the task's summary in the worker log",
    )
