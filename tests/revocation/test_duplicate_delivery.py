"""Two workers on one request: the row lock makes them take turns, page by page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from revocation import services
from revocation.models import RevocationRequest
from revocation.services import outbox
from tests.conftest import logged_in_client
from tests.support import assert_sessions_gone, lock_waiters, session_key, wait_until
from tests.worker_scopes import calls

State = RevocationRequest.State


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_deliveries_on_two_worker_processes_revoke_each_session_once(
    make_user: Any, settings: Any, start_worker: Any, wait_done: Any, tmp_path: Path
) -> None:
    settings.REVOCATION_BATCH_SIZE = 1
    settings.REVOCATION_SCOPES = {"turnstile": "tests.worker_scopes.turnstile"}
    users = [make_user() for _ in range(3)]
    clients = [logged_in_client(u) for u in users]
    gate = tmp_path / "gate"
    gate.write_text("")  # every job entering a page waits here while the file exists
    # Two pool processes, each with its own database connection.
    worker = start_worker(concurrency=2)

    request = services.revoke_sessions(scope=("turnstile", str(gate)))
    # The same task twice, as the broker redelivers it or the sweeper re-enqueues a slow job.
    assert outbox.publish(request.pk)
    wait_until(lambda: worker.tasks_received() == 2, timeout=60, what="both deliveries")
    wait_until(lambda: calls(str(gate)) >= 1, timeout=60, what="a job inside page 1")

    def second_one_is_in() -> bool:
        # Inside page 1 as well (nothing serialises the two), or waiting for the row lock.
        # SQLite's write lock, taken at BEGIN, cannot be seen: the log's word has to do.
        waiting = lock_waiters()
        return calls(str(gate)) >= 2 or waiting is None or waiting > 0

    wait_until(second_one_is_in, timeout=60, what="the second job to reach page 1")
    gate.unlink()

    wait_done(request)
    assert request.state == State.DONE, request.error
    # One page at a time: each session counted once, each user once, nothing skipped.
    assert (request.users_done, request.users_total) == (3, 3)
    assert request.sessions_revoked == 3
    assert_sessions_gone(session_key(c) for c in clients)
    # The duplicate found the job finished, or resumed it from the committed cursor.
    wait_until(lambda: worker.log.read_text().count("succeeded") == 2, what="both tasks to end")
