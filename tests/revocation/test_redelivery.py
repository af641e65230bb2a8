"""The broker redelivers a task whose worker died: nothing but Celery's settings bring it back.

The sweeper would recover these jobs too, after REVOCATION_STALL_TIMEOUT; here that is an
hour and no beat runs, so only `task_reject_on_worker_lost` and `acks_late` can. Redis
redelivers after its visibility timeout; RabbitMQ when the worker's connection closes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from revocation import services
from revocation.models import RevocationRequest
from revocation.services import outbox
from tests.conftest import logged_in_client
from tests.support import (
    assert_sessions_gone,
    hold_page,
    needs_private_broker,
    private_broker,
    publish_to,
    ready_messages,
    session_key,
    wait_until,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
State = RevocationRequest.State

NO_SWEEPER = 3600
VISIBILITY_SECONDS = 5


@pytest.fixture
def gated_job(make_user: Any, settings: Any, tmp_path: Path) -> Any:
    """Return a function that accepts a 3-user job whose page 2 blocks until the gate goes."""
    settings.REVOCATION_BATCH_SIZE = 1
    settings.REVOCATION_STALL_TIMEOUT = NO_SWEEPER
    settings.REVOCATION_SCOPES = {"gated": "tests.scopes.gated"}
    users = [make_user() for _ in range(3)]
    clients = [logged_in_client(u) for u in users]
    gate = tmp_path / "gate"

    def accept() -> tuple[RevocationRequest, Path, list[str]]:
        request = services.revoke_sessions(scope=("gated", str(gate)), reason="redelivery")
        hold_page(gate, 2)
        return request, gate, [session_key(c) for c in clients]

    return accept


def test_a_task_whose_pool_process_was_killed_is_run_again(
    gated_job: Any, start_worker: Any, wait_done: Any
) -> None:
    worker = start_worker()
    request, gate, keys = gated_job()
    wait_until(gate.with_suffix(".held").exists, timeout=60, what="the job to block on page 2")
    (pool,) = worker.pool_processes()

    # The pool process dies mid-page (out of memory, say); the worker itself lives on.
    os.kill(pool, signal.SIGKILL)
    gate.unlink()

    wait_done(request, timeout=60)
    assert request.state == State.DONE, request.error
    assert (request.users_done, request.sessions_revoked) == (3, 3)
    assert_sessions_gone(keys)
    log = worker.log.read_text()
    assert "WorkerLostError" in log
    assert worker.tasks_received() == 2, log[-3000:]


@needs_private_broker
def test_a_task_of_a_killed_worker_is_delivered_again(
    gated_job: Any, start_worker: Any, wait_done: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    with private_broker(tmp_path) as broker:
        broker.start()
        env = {
            "CELERY_BROKER_URL": broker.url,
            "REVOCATION_VISIBILITY_TIMEOUT": str(VISIBILITY_SECONDS),
        }
        worker = start_worker(**env)
        # Accept without publishing to this run's broker; the task goes to the private one.
        monkeypatch.setattr(outbox, "publish", lambda request_id: True)
        request, gate, keys = gated_job()
        publish_to(broker.url, request.pk)
        wait_until(gate.with_suffix(".held").exists, timeout=60, what="the job to block on page 2")

        worker.kill()  # the whole worker, as a lost machine: nothing gets to ack or reject
        gate.unlink()
        if broker.kind == "redis":
            # Redis hands an unacknowledged message out again once it is older than the
            # visibility timeout; a starting worker looks for those at once.
            client = redis.Redis(port=broker.port)

            def nothing_younger_than_the_timeout() -> bool:
                young = client.zrangebyscore(
                    "unacked_index", time.time() - VISIBILITY_SECONDS, "+inf"
                )
                return not young

            wait_until(nothing_younger_than_the_timeout, timeout=60, what="the visibility timeout")
        else:
            # RabbitMQ has no visibility timeout: the message is back on the queue as
            # soon as the killed worker's connection is closed.
            wait_until(lambda: ready_messages(broker.url) == 1, timeout=10, what="the message back")
        fresh = start_worker(**env)

        wait_done(request, timeout=60)
        fresh.kill()
    assert request.state == State.DONE, request.error
    assert (request.users_done, request.sessions_revoked) == (3, 3)
    assert_sessions_gone(keys)
    assert fresh.tasks_received() >= 1
