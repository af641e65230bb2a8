"""The task's error paths on a real worker: retry, failure, and the page budget hand-off."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from revocation import services
from revocation.models import RevocationRequest
from revocation.tasks import MAX_RETRIES, process_request
from tests.conftest import logged_in_client
from tests.support import (
    ROOT,
    assert_sessions_gone,
    assert_sessions_kept,
    session_key,
    subprocess_env,
)
from tests.worker_scopes import calls

State = RevocationRequest.State


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_database_error_is_retried_and_the_job_completes(
    make_user: Any, settings: Any, start_worker: Any, wait_done: Any, tmp_path: Path
) -> None:
    settings.REVOCATION_SCOPES = {"flaky": "tests.worker_scopes.flaky"}
    users = [make_user() for _ in range(2)]
    clients = [logged_in_client(u) for u in users]
    flaky = tmp_path / "flaky"
    flaky.write_text("2")  # the first two calls lose the connection
    worker = start_worker()

    request = wait_done(services.revoke_sessions(scope=("flaky", str(flaky))))

    assert request.state == State.DONE, request.error
    assert (request.users_done, request.sessions_revoked) == (2, 2)
    assert_sessions_gone(session_key(c) for c in clients)
    log = worker.log.read_text()
    assert log.count("retry: Retry in") == 2, log[-3000:]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_job_that_raises_is_failed_with_its_error_and_wait_exits_non_zero(
    make_user: Any, settings: Any, start_worker: Any, tmp_path: Path
) -> None:
    settings.REVOCATION_SCOPES = {"broken": "tests.worker_scopes.broken"}
    u = make_user()
    client = logged_in_client(u)
    broken = tmp_path / "broken"
    start_worker()

    result = subprocess.run(
        [sys.executable, "manage.py", "revoke_sessions", "--scope", f"broken={broken}", "--wait"],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0, result.stdout
    request = RevocationRequest.objects.get()
    assert request.state == State.FAILED
    assert request.error == "RuntimeError: resolver bug: org table renamed"
    assert request.finished_at is not None
    # One line naming the request and its error, no traceback.
    message = result.stderr.strip().splitlines()[-1]
    assert message == f"CommandError: revocation #{request.pk} failed: {request.error}"
    assert "Traceback" not in result.stderr
    # Not retried: a bug does not go away on its own.
    assert calls(str(broken)) == 1
    assert_sessions_kept([session_key(client)])


@pytest.mark.django_db
def test_a_database_error_that_persists_fails_the_request_after_the_last_retry(
    make_user: Any, settings: Any, tmp_path: Path
) -> None:
    settings.REVOCATION_SCOPES = {"flaky": "tests.worker_scopes.flaky"}
    make_user()
    flaky = tmp_path / "flaky"
    flaky.write_text("1000")
    request = services.revoke_sessions(scope=("flaky", str(flaky)))

    # Eagerly, in this process: each retry runs at once instead of after its countdown.
    result = process_request.apply(args=(request.pk,))

    assert result.failed()
    assert calls(str(flaky)) == MAX_RETRIES + 1
    request.refresh_from_db()
    assert request.state == State.FAILED
    assert request.error.startswith("database error: flaky resolver: call 6 lost")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_job_longer_than_the_page_budget_is_handed_to_new_tasks(
    make_user: Any, settings: Any, start_worker: Any, wait_done: Any
) -> None:
    settings.REVOCATION_BATCH_SIZE = 1
    users = [make_user() for _ in range(3)]
    clients = [logged_in_client(u) for u in users]
    # No time for more than one page per task: every page after the first is a hand-off.
    worker = start_worker(REVOCATION_PAGE_BUDGET_SECONDS="0")

    request = wait_done(services.revoke_sessions(user_ids=[u.pk for u in users]))

    assert request.state == State.DONE, request.error
    assert (request.users_done, request.sessions_revoked) == (3, 3)
    assert_sessions_gone(session_key(c) for c in clients)
    # Three pages of one user, then the page that finds no one left.
    assert worker.tasks_received() == 4, worker.log.read_text()[-3000:]
