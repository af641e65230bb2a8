"""Deleting sessions through the engine: every kind of engine, and the one-statement path."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models.signals import post_delete
from django.test.utils import CaptureQueriesContext

from revocation import deletion, engines, services
from revocation.models import UserSession
from tests import memory_engine
from tests.conftest import logged_in_client

pytestmark = pytest.mark.django_db


def test_a_custom_engine_with_server_state_has_its_sessions_deleted(
    settings: Any, make_user: Any
) -> None:
    settings.SESSION_ENGINE = "tests.memory_engine"
    u, other = make_user(), make_user()
    mine = [logged_in_client(u).cookies["sessionid"].value for _ in range(2)]
    theirs = logged_in_client(other).cookies["sessionid"].value
    assert not engines.has_table() and engines.current().cache_key_prefix is None

    request = services.revoke_user_sessions(u)
    services.run_request(request.pk, budget_seconds=60)

    assert not any(key in memory_engine.STORE for key in mine)
    assert theirs in memory_engine.STORE
    assert not UserSession.objects.filter(user_id=u.pk).exists()
    request.refresh_from_db()
    assert request.state == "done"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the database is not PostgreSQL")
@pytest.mark.parametrize("engine", ["db", "cached_db"])
def test_postgresql_deletes_mappings_and_sessions_in_one_statement(
    engine: str, settings: Any, make_user: Any
) -> None:
    """The PostgreSQL leg runs the set-based path: one statement per page, no keys to Python."""
    settings.SESSION_ENGINE = f"django.contrib.sessions.backends.{engine}"
    u, other = make_user(), make_user()
    keys = [logged_in_client(u).cookies["sessionid"].value for _ in range(3)]
    kept = logged_in_client(other).cookies["sessionid"].value

    with CaptureQueriesContext(connection) as queries:
        done = deletion.delete_mapped(UserSession.objects.filter(user_id=u.pk), limit=3)

    assert done == (3, True)  # exactly `limit`: all gone, and known to be, in one statement
    statements = [q["sql"] for q in queries]
    assert len(statements) == 1 and statements[0].startswith("WITH c AS")
    assert not any(engines.store_class()().exists(key) for key in keys)
    assert engines.store_class()().exists(kept)
    assert list(UserSession.objects.values_list("user_id", flat=True)) == [other.pk]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the database is not PostgreSQL")
def test_postgresql_deletes_more_than_the_limit_by_id_in_a_second_statement(
    make_user: Any,
) -> None:
    u = make_user()
    for _ in range(3):
        logged_in_client(u)
    rows = UserSession.objects.filter(user_id=u.pk)

    with CaptureQueriesContext(connection) as queries:
        assert deletion.delete_mapped(rows, limit=2) == (2, False)

    counted, by_id = (q["sql"] for q in queries)
    assert counted.startswith("WITH c AS") and by_id.startswith("WITH m AS")
    assert rows.count() == 1


@pytest.mark.parametrize("engine", ["db", "cached_db", "cache"])
def test_a_page_delete_takes_at_most_its_limit_and_says_when_none_are_left(
    engine: str, settings: Any, make_user: Any
) -> None:
    """Every path (one statement, the portable one): bounded, and done without a spare pass."""
    settings.SESSION_ENGINE = f"django.contrib.sessions.backends.{engine}"
    u, other = make_user(), make_user()
    keys = [logged_in_client(u).cookies["sessionid"].value for _ in range(7)]
    kept = logged_in_client(other).cookies["sessionid"].value
    rows = UserSession.objects.filter(user_id=u.pk)

    assert deletion.delete_mapped(rows, limit=5) == (5, False)
    assert rows.count() == 2
    assert sum(engines.store_class()().exists(key) for key in keys) == 2
    assert deletion.delete_mapped(rows, limit=2) == (2, True)
    assert deletion.delete_mapped(rows, limit=2) == (0, True)

    assert not any(engines.store_class()().exists(key) for key in keys)
    assert engines.store_class()().exists(kept)
    assert list(UserSession.objects.values_list("user_id", flat=True)) == [other.pk]


@pytest.mark.django_db(transaction=True)
def test_a_delete_receiver_on_sessions_is_honoured(settings: Any, make_user: Any) -> None:
    """A project listening to session deletes gets the ORM delete, not the bare statement."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    u = make_user()
    keys = {logged_in_client(u).cookies["sessionid"].value for _ in range(3)}
    heard: set[str] = set()

    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        heard.add(instance.session_key)

    post_delete.connect(receiver, sender=Session)
    try:
        assert deletion.delete_mapped(UserSession.objects.filter(user_id=u.pk), limit=10) == (
            3,
            True,
        )
        assert deletion.delete_sessions([]) == 0
    finally:
        post_delete.disconnect(receiver, sender=Session)
    assert heard == keys
    assert not Session.objects.filter(session_key__in=keys).exists()
