"""What recording the link costs a login: one statement of its own, and never the login.

Transactional: a server runs in autocommit (Django's default), where the app's
writes must not open transactions of their own.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from revocation import services
from revocation.models import UserSession
from tests.db_faults import refusing

pytestmark = pytest.mark.django_db(transaction=True)
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK")


def link_writes(captured: CaptureQueriesContext) -> list[str]:
    """Return the statements on the mapping table, checking none has a transaction of its own."""
    queries = [q["sql"] for q in captured.captured_queries]
    found = []
    for i, sql in enumerate(queries):
        if UserSession._meta.db_table not in sql:
            continue
        before = queries[i - 1] if i else ""
        after = queries[i + 1] if i + 1 < len(queries) else ""
        assert not before.startswith(TRANSACTION_CONTROL), (before, sql)
        assert not after.startswith(("COMMIT", "RELEASE", "ROLLBACK")), (sql, after)
        found.append(sql)
    return found


def test_a_login_records_its_link_in_one_statement_of_its_own(
    session_engine: str, make_user: Any
) -> None:
    user = make_user()
    client = Client()
    with CaptureQueriesContext(connection) as captured:
        assert client.post(f"/t/login/{user.pk}/").status_code == 200

    writes = link_writes(captured)
    assert len(writes) == 1, writes
    assert writes[0].startswith("INSERT")
    assert UserSession.objects.get(user=user).session_key == client.cookies["sessionid"].value


def test_a_login_from_an_anonymous_session_is_one_statement_on_postgresql(
    session_engine: str, make_user: Any
) -> None:
    """The anonymous key had no mapping: the rotation finds nothing to move and inserts."""
    user = make_user()
    client = Client()
    client.get("/t/anon/")
    with CaptureQueriesContext(connection) as captured:
        client.post(f"/t/login/{user.pk}/")

    # Elsewhere: move (nothing), drop the old key's row (none), upsert: each alone.
    assert len(link_writes(captured)) == (1 if connection.vendor == "postgresql" else 3)
    assert UserSession.objects.get(user=user).session_key == client.cookies["sessionid"].value


def test_a_key_rotation_keeps_the_row_its_id_and_sign_in_in_one_statement(
    session_engine: str, make_user: Any
) -> None:
    """The sessions page and the API name a session by its row id: a rotation must keep it."""
    user = make_user()
    client = Client()
    client.post(f"/t/login/{user.pk}/")
    before = UserSession.objects.get(user=user)
    with CaptureQueriesContext(connection) as captured:
        client.post("/t/rehash/")

    assert len(link_writes(captured)) == 1
    after = UserSession.objects.get(user=user)
    assert after.session_key == client.cookies["sessionid"].value != before.session_key
    assert (after.pk, after.created_at, after.login_id) == (
        before.pk,
        before.created_at,
        before.login_id,
    )


def test_a_logout_drops_the_link_in_one_statement_of_its_own(
    session_engine: str, make_user: Any
) -> None:
    user = make_user()
    client = Client()
    client.post(f"/t/login/{user.pk}/")
    with CaptureQueriesContext(connection) as captured:
        client.post("/t/logout/")

    writes = link_writes(captured)
    assert len(writes) == 1 and writes[0].startswith("DELETE"), writes
    assert not UserSession.objects.filter(user=user).exists()


def test_a_key_mapped_to_another_user_moves_to_the_one_signing_in(make_user: Any) -> None:
    """A stale mapping of the old key (another user's) goes; the new key is the new user's."""
    alice, bob = make_user(), make_user()
    services.link_session(
        old_key=None, new_key="k" * 32, user_id=alice.pk, ip=None, user_agent="", login_id="a"
    )
    services.link_session(
        old_key="k" * 32,
        new_key="n" * 32,
        user_id=bob.pk,
        ip="10.0.0.1",
        user_agent="ua",
        login_id="b",
    )

    assert list(UserSession.objects.values_list("user_id", "session_key", "login_id", "ip")) == [
        (bob.pk, "n" * 32, "b", "10.0.0.1")
    ]


def test_linking_a_key_already_mapped_overwrites_its_row(make_user: Any) -> None:
    """The upsert: a key seen again (another sign-in on it) is this sign-in's now."""
    alice, bob = make_user(), make_user()
    for user, login_id in ((alice, "first"), (bob, "second")):
        services.link_session(
            old_key=None,
            new_key="k" * 32,
            user_id=user.pk,
            ip="::1",
            user_agent=login_id,
            login_id=login_id,
        )

    row = UserSession.objects.get()
    assert (row.user_id, row.login_id, row.ip, row.user_agent) == (
        bob.pk,
        "second",
        "::1",
        "second",
    )


@pytest.mark.parametrize("atomic_requests", [False, True], ids=["autocommit", "atomic-requests"])
def test_a_link_the_database_refuses_does_not_break_the_login(
    make_user: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    atomic_requests: bool,
) -> None:
    """Inside ATOMIC_REQUESTS a failed statement would abort the login's transaction on
    PostgreSQL: the link's savepoint keeps the failure to itself."""
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", atomic_requests)
    user = make_user()
    client = Client(HTTP_USER_AGENT="refused-by-the-test")
    with refusing(UserSession, "user_agent", "refused-by-the-test"):
        response = client.post(f"/t/login/{user.pk}/")

    assert response.status_code == 200
    assert client.get("/t/whoami/").json()["user"] == user.pk
    assert f"revocation: could not link session to user {user.pk}" in caplog.messages
    assert not UserSession.objects.exists()


def test_a_link_written_by_the_previous_release_still_commits(make_user: Any) -> None:
    """During a rolling deploy the old INSERT names none of migration 0006's columns."""
    if connection.vendor == "sqlite":
        pytest.skip("the database is SQLite: one machine, no rolling deploy, no column default")
    user = make_user()
    table = connection.ops.quote_name(UserSession._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, session_key, login_id, created_at, last_seen_at,"  # noqa: S608
            " ip, user_agent) VALUES (%s, %s, '', %s, %s, NULL, '')",
            [user.pk, "k" * 32, timezone.now(), timezone.now()],
        )
    row = UserSession.objects.get(session_key="k" * 32)
    assert (row.device, row.country, row.city) == ("", "", "")
