"""revoke_sessions and revocation_status: JSON contract, exit codes, clear errors."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management.base import CommandError

from revocation import services
from revocation.models import RevocationRequest
from tests.conftest import is_logged_in, logged_in_client
from tests.conftest import run_command as run

STATUS_KEYS = {
    "id",
    "state",
    "users_total",
    "users_done",
    "sessions_revoked",
    "created_at",
    "finished_at",
    "error",
}


@pytest.mark.django_db
def test_unknown_user_is_named_and_nothing_is_created(make_user: Any) -> None:
    make_user(username="known")
    with pytest.raises(CommandError, match="unknown user 'ghost'"):
        run("revoke_sessions", "--user", "known", "--user", "ghost")
    assert not RevocationRequest.objects.exists()


@pytest.mark.django_db
def test_revoke_by_username_and_id_prints_json_last(make_user: Any) -> None:
    alice, bob = make_user(username="alice"), make_user()
    out, _ = run("revoke_sessions", "--user", "alice", "--user", str(bob.pk), "--json")
    status = json.loads(out.strip().splitlines()[-1])
    assert set(status) >= STATUS_KEYS
    request = RevocationRequest.objects.get(pk=status["id"])
    assert sorted(request.user_ids) == sorted([alice.pk, bob.pk])
    assert status["state"] == "pending"


@pytest.mark.django_db(transaction=True)
def test_wait_reports_progress_and_exits_when_done(make_user: Any, start_worker: Any) -> None:
    u = make_user(username="carol")
    client = logged_in_client(u)
    start_worker()
    out, err = run("revoke_sessions", "--user", "carol", "--reason", "test", "--wait", "--json")
    status = json.loads(out.strip().splitlines()[-1])
    assert status["state"] == "done"
    assert status["sessions_revoked"] == 1
    # Not a terminal: plain progress lines on stderr, ending with the final state.
    assert err.strip().splitlines()[-1].startswith(f"Revocation #{status['id']} done")
    assert not is_logged_in(client)


@pytest.mark.django_db
def test_status_of_a_request(make_user: Any) -> None:
    request = services.revoke_user_sessions(make_user(), reason="why not")
    out, _ = run("revocation_status", str(request.pk), "--json")
    status = json.loads(out.strip().splitlines()[-1])
    assert set(status) >= STATUS_KEYS
    assert (status["id"], status["state"], status["reason"]) == (request.pk, "pending", "why not")
    human, _ = run("revocation_status", str(request.pk))
    assert f"Revocation #{request.pk} pending" in human


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["424242", "abc"])
def test_status_of_an_unknown_request_fails(bad: str) -> None:
    with pytest.raises(CommandError, match=f"no revocation request with id '{bad}'"):
        run("revocation_status", bad)


@pytest.mark.django_db
def test_failed_request_makes_wait_exit_non_zero(make_user: Any) -> None:
    request = services.revoke_user_sessions(make_user())
    services.fail_request(request.pk, error="boom")
    from revocation.management.commands._output import wait

    assert wait(request.pk, stream=io.StringIO()).state == "failed"


def test_commands_exit_non_zero_without_traceback() -> None:
    import subprocess
    import sys

    from tests.support import ROOT, subprocess_env

    result = subprocess.run(
        [sys.executable, "manage.py", "revocation_status", "nope"],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "no revocation request with id 'nope'" in result.stderr
    assert "Traceback" not in result.stderr
