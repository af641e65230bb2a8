"""Nothing accepted is lost: worker crashes and broker outages end in `done`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from revocation import services
from revocation.models import RevocationRequest, UserSession
from tests.conftest import is_logged_in, logged_in_client
from tests.support import (
    ROOT,
    assert_sessions_gone,
    black_hole,
    broker_url_at,
    needs_private_broker,
    private_broker,
    session_key,
    subprocess_env,
    wait_until,
)
from workers import beat
from workers.schedule import Entry

pytestmark = pytest.mark.django_db(transaction=True)
State = RevocationRequest.State


@pytest.mark.worker
def test_worker_killed_mid_request_then_a_fresh_worker_finishes_it(
    make_user: Any, settings: Any, start_worker: Any, wait_done: Any, tmp_path: Path
) -> None:
    settings.REVOCATION_BATCH_SIZE = 1
    settings.REVOCATION_SCOPES = {"gated": "tests.scopes.gated"}
    users = [make_user() for _ in range(3)]
    clients = [logged_in_client(u) for u in users]
    gate = tmp_path / "gate"
    # Call 1 counts users and call 2 reads page 1 (one transaction); call 3 blocks page 2.
    gate.write_text("3")
    worker = start_worker()

    request = services.revoke_sessions(scope=("gated", str(gate)), reason="incident")
    wait_until(gate.with_suffix(".held").exists, timeout=60, what="the worker to block on page 2")
    request.refresh_from_db()
    assert (request.state, request.users_done) == (State.RUNNING, 1)

    worker.kill()
    gate.unlink()
    settings.REVOCATION_STALL_TIMEOUT = 0
    start_worker()
    # The broker brings the task back too (RabbitMQ at once, Redis after its visibility
    # timeout); the sweeper does not wait for it, and the duplicate is harmless.
    assert services.sweep_outbox() == [request.pk]

    wait_done(request)
    assert request.state == State.DONE
    assert (request.users_done, request.users_total) == (3, 3)
    assert request.sessions_revoked == 3
    assert_sessions_gone(session_key(c) for c in clients)
    assert not any(is_logged_in(c) for c in clients)
    assert not UserSession.objects.exists()


@pytest.mark.worker
@needs_private_broker
def test_broker_down_request_stays_pending_then_the_sweeper_completes_it(
    make_user: Any, settings: Any, start_worker: Any, wait_done: Any, tmp_path: Path
) -> None:
    u = make_user(username="victim")
    clients = [logged_in_client(u), logged_in_client(u)]

    with private_broker(tmp_path) as broker:
        # The broker is down: the web side still accepts the request and returns.
        result = subprocess.run(
            [sys.executable, "manage.py", "revoke_sessions", "--user", "victim", "--json"],
            cwd=ROOT,
            env=subprocess_env(CELERY_BROKER_URL=broker.url),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        accepted = json.loads(result.stdout.strip().splitlines()[-1])
        assert accepted["state"] == "pending"
        assert "enqueue failed" in result.stderr
        request = RevocationRequest.objects.get(pk=accepted["id"])
        assert request.enqueue_failed
        # Nothing was deleted yet (the fence already refuses the cookies, see test_fences).
        assert UserSession.objects.filter(user=u).count() == 2

        # The broker comes back; beat's sweeper re-enqueues, the worker completes.
        broker.start()
        settings.REVOCATION_SWEEP_INTERVAL = 1
        beat.install([Entry("revocation.sweep_outbox", "revocation.sweep_outbox", 1)])
        start_worker(beat=True, CELERY_BROKER_URL=broker.url)
        wait_done(request)
        assert request.state == State.DONE
        assert request.sessions_revoked == 2
        assert_sessions_gone(session_key(c) for c in clients)
        assert not any(is_logged_in(c) for c in clients)


def test_sweeper_requeues_failed_publishes_and_stalled_requests_only(
    make_user: Any, settings: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    u = make_user()
    fresh = services.revoke_user_sessions(u)
    failed = services.revoke_user_sessions(u)
    stalled = services.revoke_user_sessions(u)
    finished = services.revoke_user_sessions(u)
    long_ago = timezone.now() - timedelta(hours=1)
    RevocationRequest.objects.filter(pk=failed.pk).update(enqueue_failed=True)
    RevocationRequest.objects.filter(pk=stalled.pk).update(state=State.RUNNING, updated_at=long_ago)
    RevocationRequest.objects.filter(pk=finished.pk).update(state=State.DONE, updated_at=long_ago)

    assert services.sweep_outbox() == [failed.pk, stalled.pk]
    # Just re-enqueued: not due again until another stall timeout passes.
    assert services.sweep_outbox() == []
    assert not RevocationRequest.objects.get(pk=failed.pk).enqueue_failed
    assert RevocationRequest.objects.get(pk=fresh.pk).state == State.PENDING


@pytest.mark.worker
def test_a_broker_that_never_answers_delays_the_request_but_loses_nothing(
    make_user: Any, start_worker: Any, wait_done: Any
) -> None:
    u = make_user()
    clients = [logged_in_client(u), logged_in_client(u)]
    keys = [session_key(c) for c in clients]
    code = (
        "from django.contrib.auth import get_user_model; from revocation import services; "
        f"user = get_user_model().objects.get(pk={u.pk}); "
        "print(services.revoke_user_sessions(user, reason='broker hung').pk)"
    )

    with black_hole() as port:
        # A web process whose broker accepts the connection and then never answers.
        # The timeout is only a guard: publishing must give up on its own.
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env=subprocess_env(CELERY_BROKER_URL=broker_url_at(port)),
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "enqueue failed" in result.stderr
    request = RevocationRequest.objects.get(pk=int(result.stdout.strip().splitlines()[-1]))
    # Committed and flagged for the sweeper; nothing deleted yet, but the fence applies
    # (and logs that session out: the job is left with the other one).
    assert (request.state, request.enqueue_failed) == (State.PENDING, True)
    assert UserSession.objects.filter(session_key__in=keys).count() == 2
    assert not is_logged_in(clients[0])

    # With a broker that works, the sweeper publishes it and a worker carries it out.
    start_worker()
    assert services.sweep_outbox() == [request.pk]
    wait_done(request)
    assert request.state == State.DONE, request.error
    assert request.sessions_revoked == 1
    assert_sessions_gone(keys)
