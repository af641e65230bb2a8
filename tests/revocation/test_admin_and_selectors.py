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
