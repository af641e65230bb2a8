"""Run inside the fresh project's venv by tests/test_fresh_project.py: "log out my other sessions".

It imports only Django and the installed app (never this repository), and exits
non-zero with the failed assertion's message if anything is off.
"""

from __future__ import annotations

import os
import time

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.sessions.models import Session  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from revocation.models import UserSession  # noqa: E402

# A real worker picks the job up from the broker; generous for a loaded CI machine.
TIMEOUT = 90
PASSWORD = "fresh-pass-123"


def logged_in_client(username: str) -> tuple[Client, str]:
    """Return a client logged in as `username` and its session key."""
    client = Client()
    assert client.login(username=username, password=PASSWORD), "login failed"
    key = client.session.session_key
    assert key, "login saved no session"
    return client, key


def wait_until_gone(session_key: str) -> None:
    """Wait until the worker has deleted the session row of `session_key`."""
    deadline = time.monotonic() + TIMEOUT
    while Session.objects.filter(session_key=session_key).exists():
        assert time.monotonic() < deadline, f"the other session is still there after {TIMEOUT}s"
        time.sleep(0.2)


def main() -> None:
    """Log in twice, log out the other session from the kept one, check both ends."""
    vendor = os.environ["FRESH_PROJECT_VENDOR"]
    assert connection.vendor == vendor, f"the project runs on {connection.vendor}, not {vendor}"
    # The test client's host ("testserver") and outbox, as in a test run.
    setup_test_environment()
    get_user_model().objects.create_user("alice", password=PASSWORD)
    kept, kept_key = logged_in_client("alice")
    other, other_key = logged_in_client("alice")
    mapped = set(UserSession.objects.values_list("session_key", flat=True))
    assert mapped == {kept_key, other_key}, f"logins not recorded: {mapped}"

    response = kept.post("/sessions/logout-others/")
    assert response.status_code == 302, f"log out others answered {response.status_code}"
    wait_until_gone(other_key)

    assert not UserSession.objects.filter(session_key=other_key).exists(), "mapping left behind"
    assert Session.objects.filter(session_key=kept_key).exists(), "the kept session was deleted"
    page = kept.get("/sessions/")
    assert page.status_code == 200, f"/sessions/ answered {page.status_code} to the kept session"
    listed = kept.get("/api/sessions/").json()
    assert listed["count"] == 1 and listed["items"][0]["current"], f"API lists {listed}"
    assert other.get("/sessions/").status_code == 302, "the other session still gets in"
    print(f"fresh project on {vendor}: the other session is gone, the kept one works")


main()
