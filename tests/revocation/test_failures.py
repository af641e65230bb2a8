"""Nothing accepted is lost: worker crashes and broker outages end in `done`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from revocation import services
from revocation.models import RevocationRequest, UserSession
from tests.conftest import is_logged_in, logged_in_client
from tests.support import ROOT, free_port, private_redis, stop_redis, subprocess_env, wait_until
from workers import beat
from workers.schedule import Entry

pytestmark = pytest.mark.django_db(transaction=True)
State = RevocationRequest.State


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
    # Redis would redeliver after its visibility timeout; the sweeper does not wait for it.
    assert services.sweep_outbox() == [request.pk]

    wait_done(request)
    assert request.state == State.DONE
    assert (request.users_done, request.users_total) == (3, 3)
    assert request.sessions_revoked == 3
    assert not any(is_logged_in(c) for c in clients)
    assert not UserSession.objects.exists()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_broker_down_request_stays_pending_then_the_sweeper_completes_it(
    make_user: Any, settings: Any, start_worker: Any, wait_done: Any, tmp_path: Path
) -> None:
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    u = make_user(username="victim")
    clients = [logged_in_client(u), logged_in_client(u)]

    with private_redis(tmp_path, port) as start_redis:
        # The broker is down: the web side still accepts the request and returns.
        result = subprocess.run(
            [sys.executable, "manage.py", "revoke_sessions", "--user", "victim", "--json"],
            cwd=ROOT,
            env=subprocess_env(CELERY_BROKER_URL=broker),
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
        start_redis()
        settings.REVOCATION_SWEEP_INTERVAL = 1
        beat.install([Entry("revocation.sweep_outbox", "revocation.sweep_outbox", 1)])
        start_worker(beat=True, CELERY_BROKER_URL=broker)
        wait_done(request)
        assert request.state == State.DONE
        assert request.sessions_revoked == 2
        assert not UserSession.objects.filter(user=u).exists()
        assert not any(is_logged_in(c) for c in clients)
        stop_redis(port)


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
