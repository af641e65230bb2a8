"""Fan-out on real workers: parts run in parallel, and a part whose worker dies is resumed."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from revocation import services
from revocation.models import RevocationRequest
from revocation.services import outbox
from tests.conftest import logged_in_client
from tests.support import assert_sessions_gone, lock_waiters, session_key, wait_until
from tests.worker_scopes import calls

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor == "sqlite", reason="the database is SQLite, where no request is split"
    ),
]
State = RevocationRequest.State
Phase = RevocationRequest.Phase

NO_SWEEPER = 3600
USERS = 6
# Two parts of three users, pages of one user.
FANOUT = {"REVOCATION_FANOUT_WIDTH": "2", "REVOCATION_FANOUT_MIN_USERS": "2"}


@pytest.fixture
def sessions(make_user: Any, settings: Any) -> tuple[list[Any], list[str]]:
    """Return USERS users and their session keys (two for the first user)."""
    settings.REVOCATION_BATCH_SIZE = 1
    settings.REVOCATION_STALL_TIMEOUT = NO_SWEEPER
    users = [make_user() for _ in range(USERS)]
    keys = [session_key(logged_in_client(u)) for u in [users[0], *users]]
    return users, keys


def assert_done_exactly(request: RevocationRequest, keys: list[str]) -> None:
    """The request is done, each user and each session counted once, nothing left."""
    assert request.state == State.DONE, request.error
    assert request.phase == Phase.PARTS
    assert (request.users_done, request.users_total) == (USERS, USERS)
    assert request.sessions_revoked == len(keys)
    parts = list(request.parts.all())
    assert len(parts) == 2 and all(p.done for p in parts)
    assert [p.users_done for p in parts] == [3, 3]
    assert sum(p.sessions_revoked for p in parts) == len(keys)
    assert_sessions_gone(keys)


def test_two_worker_processes_carry_a_fanned_out_request_to_done(
    sessions: Any, start_worker: Any, wait_done: Any
) -> None:
    users, keys = sessions
    worker = start_worker(concurrency=2, **FANOUT)

    request = services.revoke_sessions(user_ids=[u.pk for u in users])

    wait_done(request)
    assert_done_exactly(request, keys)
    # The request's task, then one per part (and their hand-ons: a budget of 20 s).
    assert worker.tasks_received() >= 3


def test_a_part_whose_pool_process_is_killed_mid_page_is_resumed_exactly(
    sessions: Any, settings: Any, start_worker: Any, wait_done: Any, tmp_path: Path
) -> None:
    _, keys = sessions
    settings.REVOCATION_SCOPES = {"gated": "tests.scopes.gated"}
    gate = tmp_path / "gate"
    worker = start_worker(**FANOUT)

    request = services.revoke_sessions(scope=("gated", str(gate)), reason="fan-out kill")
    calls = gate.with_suffix(".calls")
    made = int(calls.read_text()) if calls.exists() else 0
    # The request's task resolves the scope twice (the count, the split); then each part
    # page once: block inside the third part page, its part's row locked, sessions deleted
    # (uncommitted) by the pages before it.
    gate.write_text(str(made + 2 + 3))
    wait_until(gate.with_suffix(".held").exists, timeout=60, what="a part page to block")
    (pool,) = worker.pool_processes()

    os.kill(pool, signal.SIGKILL)
    gate.unlink()

    wait_done(request)
    assert_done_exactly(request, keys)
    log = worker.log.read_text()
    assert "WorkerLostError" in log


def test_a_part_delivered_twice_on_two_worker_processes_counts_each_user_once(
    sessions: Any,
    settings: Any,
    start_worker: Any,
    wait_done: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, keys = sessions
    settings.REVOCATION_SCOPES = {"turnstile": "tests.worker_scopes.turnstile"}
    settings.REVOCATION_FANOUT_WIDTH = 2
    settings.REVOCATION_FANOUT_MIN_USERS = 2
    gate = tmp_path / "gate"
    send = outbox.publish
    monkeypatch.setattr(outbox, "publish", lambda request_id, part=None: True)
    request = services.revoke_sessions(scope=("turnstile", str(gate)))
    # The split here, its tasks not sent: the test sends them below.
    services.run_request(request.pk, budget_seconds=0)
    first, second = request.parts.all()
    gate.write_text("")  # every page entering the scope waits here while the file exists
    made = calls(str(gate))
    worker = start_worker(concurrency=2)

    # The same part's task twice, as a redelivery or the sweeper's re-enqueue makes it.
    assert send(request.pk, first.pk) and send(request.pk, first.pk)
    wait_until(lambda: calls(str(gate)) > made, timeout=60, what="a delivery inside a page")

    def second_one_is_in() -> bool:
        # Inside the page as well (nothing serialises the two), or waiting for the row lock.
        # Lock waits are seen on PostgreSQL only: elsewhere the end state has to do.
        waiting = lock_waiters()
        return calls(str(gate)) > made + 1 or waiting is None or waiting > 0

    wait_until(second_one_is_in, timeout=60, what="the second delivery to reach the page")
    gate.unlink()
    assert send(request.pk, second.pk)

    wait_done(request)
    assert_done_exactly(request, keys)
    assert worker.tasks_received() >= 3
