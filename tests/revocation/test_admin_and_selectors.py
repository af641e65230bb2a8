"""Admin screens render read-only; the selector returns only live sessions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from revocation.models import UserSession
from revocation.selectors import sessions_for_user


@pytest.mark.django_db
def test_usersession_admin_is_read_only(make_user: Any) -> None:
    admin = make_user(is_staff=True, is_superuser=True)
    user = make_user()
    Client().force_login(user)
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/revocation/usersession/")
    assert page.status_code == 200
    assert user.username in page.content.decode()
    row = UserSession.objects.filter(user=user).get()
    assert row.session_key not in page.content.decode()
    assert client.get("/admin/revocation/usersession/add/").status_code == 403
    client.post(f"/admin/revocation/usersession/{row.pk}/delete/", {"post": "yes"})
    assert UserSession.objects.filter(pk=row.pk).exists()


@pytest.mark.django_db
def test_usersession_admin_shows_device_and_country(make_user: Any) -> None:
    admin = make_user(is_staff=True, is_superuser=True)
    user = make_user()
    Client().force_login(user)
    row = UserSession.objects.get(user=user)
    UserSession.objects.filter(pk=row.pk).update(
        device="Chrome|Windows|11|", country="DE", city="Berlin", user_agent=""
    )
    client = Client()
    client.force_login(admin)

    listing = client.get("/admin/revocation/usersession/").content.decode()
    detail = client.get(f"/admin/revocation/usersession/{row.pk}/change/").content.decode()

    assert "Chrome on Windows 11" in listing and "Berlin, DE" in listing
    assert "Chrome on Windows 11" in detail and "Berlin" in detail
    # The stored form is the app's business, not the admin reader's.
    assert "Chrome|Windows" not in listing + detail
    assert row.session_key not in detail


@pytest.mark.django_db
def test_selector_skips_expired_and_deleted_sessions(session_engine: str, make_user: Any) -> None:
    user = make_user()
    clients = [Client() for _ in range(3)]
    for c in clients:
        c.force_login(user)
    keys = [c.session.session_key for c in clients]
    expired, deleted, live = keys
    if session_engine == "cache":
        from importlib import import_module

        from django.conf import settings

        store = import_module(settings.SESSION_ENGINE).SessionStore
        store(expired).delete()
        store(deleted).delete()
    else:
        Session.objects.filter(session_key=expired).update(
            expire_date=timezone.now() - timedelta(seconds=1)
        )
        Session.objects.filter(session_key=deleted).delete()
    assert [us.session_key for us in sessions_for_user(user)] == [live]


@pytest.mark.django_db
def test_the_selector_composes_as_a_subquery_newest_first(
    session_engine: str, make_user: Any
) -> None:
    """Relabelled inside another query (pk__in=...), it still names its own rows' keys."""
    user, other = make_user(), make_user()
    clients = [Client() for _ in range(3)]
    for c in clients:
        c.force_login(user)
    Client().force_login(other)
    keys = [c.session.session_key for c in clients]
    first = UserSession.objects.get(session_key=keys[0])
    # Two sign-ins in the same instant: the newer row first.
    UserSession.objects.filter(session_key=keys[1]).update(created_at=first.created_at)
    if session_engine == "cache":
        from importlib import import_module

        from django.conf import settings

        import_module(settings.SESSION_ENGINE).SessionStore(keys[2]).delete()
    else:
        Session.objects.filter(session_key=keys[2]).delete()

    mine = sessions_for_user(user)
    assert [us.session_key for us in mine] == [keys[1], keys[0]]
    inner = UserSession.objects.filter(pk__in=mine.values("pk")).order_by("pk")
    assert [us.session_key for us in inner] == keys[:2]
    assert mine.exclude(session_key=keys[0]).count() == 1


@pytest.mark.django_db
def test_session_list_marks_the_current_session_and_names_the_device(make_user: Any) -> None:
    from revocation.selectors import session_list

    user = make_user()
    here, newer = Client(), Client()
    here.force_login(user)
    newer.force_login(user)
    current = here.session.session_key
    assert current is not None
    UserSession.objects.filter(session_key=newer.session.session_key).update(
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/127.0", ip="10.0.0.7"
    )
    ids = dict(UserSession.objects.values_list("session_key", "pk"))

    items = session_list(user, current_key=current)

    assert [item["id"] for item in items] == [ids[str(newer.session.session_key)], ids[current]]
    first, second = items
    assert (first["current"], second["current"]) == (False, True)
    # A row without a stored description (as from before there was one): from its user agent.
    assert (first["ip"], first["device"]) == ("10.0.0.7", "Firefox on Linux")
    assert first["user_agent"].endswith("Firefox/127.0")
    assert second["created_at"] <= first["created_at"] and first["last_seen_at"] is not None
    assert not any(item["current"] for item in session_list(user, current_key=None))
