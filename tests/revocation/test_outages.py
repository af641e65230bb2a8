"""Outages the service rides out: a broker that goes away mid-job, a worker that dies."""

from __future__ import annotations

import runpy
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from revocation import services
from revocation.app_settings import app_settings
from revocation.models import RevocationRequest
from revocation.services import outbox
from tests.conftest import is_logged_in, logged_in_client
from tests.support import (
    ROOT,
    ProcfileWorker,
    assert_sessions_gone,
    hold_page,
    needs_private_broker,
    private_broker,
    publish_to,
    session_key,
    wait_until,
)
from workers import beat
from workers.schedule import schedule

State = RevocationRequest.State

OUTAGE_SECONDS = 15
# A task's page budget in the outage test's worker: short, so the hand-off comes soon.
BUDGET_SECONDS = 2


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@needs_private_broker
def test_the_same_worker_rides_out_a_broker_outage_and_finishes_the_job(
    make_user: Any, settings: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    settings.REVOCATION_BATCH_SIZE = 1
    settings.REVOCATION_SCOPES = {"gated": "tests.scopes.gated"}
    users = [make_user() for _ in range(4)]
    clients = [logged_in_client(u) for u in users]
    gate = tmp_path / "gate"

    with private_broker(tmp_path) as broker:
        broker.start()
        # As the Procfile runs it: the crash needed a worker with room to prefetch.
        worker = ProcfileWorker(
            tmp_path / "worker.log",
            CELERY_BROKER_URL=broker.url,
            REVOCATION_PAGE_BUDGET_SECONDS=str(BUDGET_SECONDS),
        )
        try:
            worker.start()
            assert worker.process is not None
            pid = worker.process.pid
            # Accept the request without publishing to this run's own broker, then hand
            # its task to the private one that the worker consumes.
            monkeypatch.setattr(outbox, "publish", lambda request_id: True)
            request = services.revoke_sessions(scope=("gated", str(gate)), reason="outage")
            hold_page(gate, 2)
            publish_to(broker.url, request.pk)
            wait_until(gate.with_suffix(".held").exists, timeout=60, what="the job to be mid-way")
            held_at = time.monotonic()
            request.refresh_from_db()
            assert (request.state, request.users_done) == (State.RUNNING, 1)

            broker.stop()
            time.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for a condition
            broker.start()
            # Hold the page past the task's budget: the rest of the job is then a new
            # task, which only a worker that reconnected to the broker receives. (On
            # RabbitMQ the running task itself comes back too: its connection closed.)
            wait_until(
                lambda: time.monotonic() - held_at > BUDGET_SECONDS + 1,
                timeout=BUDGET_SECONDS + 5,
                what="the page budget to pass",
            )
            gate.unlink()

            def finished() -> bool:
                request.refresh_from_db()
                return request.is_finished or worker.process.poll() is not None  # type: ignore[union-attr]

            wait_until(finished, timeout=120, what="the job to finish")
            log = worker.log.read_text(errors="replace")
            assert worker.process.poll() is None, log[-5000:]
            assert worker.process.pid == pid
            assert "Unrecoverable error" not in log
            # The rest of the job came as new tasks, through the reconnected consumer.
            assert worker.tasks_received() > 1, log[-5000:]
        finally:
            worker.kill()

    assert request.state == State.DONE, request.error
    assert (request.users_done, request.users_total) == (4, 4)
    assert request.sessions_revoked == 4
    assert_sessions_gone(session_key(c) for c in clients)
    assert not any(is_logged_in(c) for c in clients)


def test_by_default_a_dead_workers_job_is_resumed_within_90_seconds(
    settings: Any, monkeypatch: Any
) -> None:
    # The defaults as shipped: nothing from this run's environment or settings.
    for name in ("REVOCATION_STALL_TIMEOUT", "REVOCATION_SWEEP_INTERVAL"):
        monkeypatch.delenv(name, raising=False)
    project = runpy.run_path(str(ROOT / "config" / "settings" / "base.py"))
    del settings.REVOCATION_STALL_TIMEOUT, settings.REVOCATION_SWEEP_INTERVAL
    stall, sweep = app_settings.STALL_TIMEOUT, app_settings.SWEEP_INTERVAL

    # A job stops making progress at the latest STALL_TIMEOUT before a sweep finds it
    # stalled, and sweeps are SWEEP_INTERVAL apart.
    assert stall + sweep < 90
    # The project's settings leave both to the app's defaults (or set the same).
    assert project.get("REVOCATION_STALL_TIMEOUT", stall) == stall
    assert project.get("REVOCATION_SWEEP_INTERVAL", sweep) == sweep
    # And beat runs the sweeper that often.
    entries = {e.name: e for e in schedule()}
    assert entries["revocation.sweep_outbox"].every_seconds == sweep


@pytest.mark.django_db
def test_the_sweeper_requeues_a_job_silent_for_longer_than_the_default_stall_timeout(
    make_user: Any, settings: Any, monkeypatch: Any
) -> None:
    del settings.REVOCATION_STALL_TIMEOUT
    monkeypatch.delenv("REVOCATION_STALL_TIMEOUT", raising=False)
    published: list[int] = []

    def publish(request_id: int) -> bool:
        published.append(request_id)
        return True

    monkeypatch.setattr(outbox, "publish", publish)
    u = make_user()
    dead = services.revoke_user_sessions(u)
    alive = services.revoke_user_sessions(u)
    now = timezone.now()
    stall = timedelta(seconds=app_settings.STALL_TIMEOUT)
    RevocationRequest.objects.filter(pk=dead.pk).update(
        state=State.RUNNING, updated_at=now - stall - timedelta(seconds=1)
    )
    RevocationRequest.objects.filter(pk=alive.pk).update(
        state=State.RUNNING, updated_at=now - stall + timedelta(seconds=10)
    )
    published.clear()

    assert services.sweep_outbox() == [dead.pk]
    assert published == [dead.pk]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_beat_resumes_the_job_of_a_killed_worker_on_its_own(
    make_user: Any, settings: Any, start_worker: Any, wait_done: Any, tmp_path: Path
) -> None:
    # The defaults scaled down (3 s stall, 1 s sweeps) so the test takes seconds.
    settings.REVOCATION_BATCH_SIZE = 1
    settings.REVOCATION_STALL_TIMEOUT = 3
    settings.REVOCATION_SWEEP_INTERVAL = 1
    settings.REVOCATION_SCOPES = {"gated": "tests.scopes.gated"}
    users = [make_user() for _ in range(3)]
    clients = [logged_in_client(u) for u in users]
    gate = tmp_path / "gate"
    request = services.revoke_sessions(scope=("gated", str(gate)), reason="crash")
    hold_page(gate, 2)
    worker = start_worker()
    wait_until(gate.with_suffix(".held").exists, timeout=60, what="the job to be mid-way")
    request.refresh_from_db()
    assert (request.state, request.users_done) == (State.RUNNING, 1)
    worker.kill()
    gate.unlink()
    # Nothing calls the sweeper but beat, on the schedule installed from the settings.
    beat.install()
    start_worker(beat=True)

    wait_done(request)
    assert request.state == State.DONE
    assert (request.users_done, request.sessions_revoked) == (3, 3)
    assert_sessions_gone(session_key(c) for c in clients)
    assert not any(is_logged_in(c) for c in clients)
