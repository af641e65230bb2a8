"""The kept session of "log out my other sessions" survives its own concurrent requests.

Each request of a session saves its own copy of the session, so two concurrent
requests race: the one saved last wins, whatever fence it was stamped against.
These tests force the losing interleavings deterministically by holding two
copies of one session, as two concurrent requests do.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import pytest
from django.contrib.sessions.backends.base import UpdateError

from revocation import engines, services, stamps
from revocation.models import RevocationRequest, UserSession
from tests.conftest import is_logged_in, logged_in_client
from tests.support import copy_of, run_pending_requests

# Transactional: fences reach the cache on commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def test_double_click_on_log_out_others_keeps_this_session(
    session_engine: str, make_user: Any
) -> None:
    u = make_user()
    here, elsewhere = logged_in_client(u), logged_in_client(u)
    key = here.cookies["sessionid"].value
    first, second = copy_of(key), copy_of(key)

    services.revoke_user_sessions(u, keep_session=first, reason="logged out other sessions")
    services.revoke_user_sessions(u, keep_session=second, reason="logged out other sessions")
    # The first request's copy, stamped against the older fence, is saved last.
    second.save()
    first.save()

    assert is_logged_in(here)
    assert not is_logged_in(elsewhere)
    run_pending_requests()
    assert is_logged_in(here)
    assert engines.store_class()().exists(key)
    assert UserSession.objects.filter(user_id=u.pk).count() == 1


def test_many_concurrent_requests_of_the_kept_session_keep_it(make_user: Any) -> None:
    u = make_user()
    here = logged_in_client(u)
    key = here.cookies["sessionid"].value
    copies = [copy_of(key) for _ in range(5)]
    for copy in copies:
        services.revoke_user_sessions(u, keep_session=copy)
    for copy in reversed(copies):
        copy.save()
    run_pending_requests()
    assert is_logged_in(here)


def test_log_out_others_racing_a_password_change_keeps_this_session(
    session_engine: str, make_user: Any
) -> None:
    u = make_user()
    here, elsewhere = logged_in_client(u), logged_in_client(u)
    key = here.cookies["sessionid"].value
    revoking, changing = copy_of(key), copy_of(key)

    # The password change rotates the key and moves the mapping, as
    # update_session_auth_hash() and the middleware do, and keeps its session.
    changing.cycle_key()
    services.link_session(
        old_key=key, new_key=changing.session_key, user_id=u.pk, ip=None, user_agent=""
    )
    services.revoke_user_sessions(u, keep_session=changing, reason="password changed")
    changing.save()
    # Meanwhile "log out my other sessions" still holds the old key, and commits later.
    services.revoke_user_sessions(u, keep_session=revoking, reason="logged out other sessions")
    with suppress(UpdateError):  # the db engines refuse to save a rotated-away session
        revoking.save()
    here.cookies["sessionid"] = changing.session_key

    run_pending_requests()
    assert is_logged_in(here)
    assert not is_logged_in(elsewhere)
    assert UserSession.objects.get(user_id=u.pk).session_key == changing.session_key


def test_a_later_revocation_from_another_session_fences_the_kept_one(make_user: Any) -> None:
    u = make_user()
    here, there = logged_in_client(u), logged_in_client(u)
    services.revoke_user_sessions(u, keep_session=copy_of(here.cookies["sessionid"].value))
    services.revoke_user_sessions(u, keep_session=copy_of(there.cookies["sessionid"].value))
    # The newest fence keeps only `there`: an older keep entry spares nothing.
    assert not is_logged_in(here)
    assert is_logged_in(there)


def test_a_session_from_before_sign_in_ids_gets_one_when_it_keeps_itself(
    session_engine: str, make_user: Any
) -> None:
    """Its new sign-in id goes on its mapping too, so the job spares it by that id."""
    u = make_user()
    here, elsewhere = logged_in_client(u), logged_in_client(u)
    session = here.session
    del session[stamps.LOGIN_ID]  # signed in before sign-in ids existed
    session.save()
    UserSession.objects.update(login_id="")

    assert here.post("/t/revoke-others/").status_code == 200

    request = RevocationRequest.objects.get()
    stamped = here.session[stamps.LOGIN_ID]
    assert stamped and request.keep_login_id == stamped
    assert UserSession.objects.get(session_key=here.session.session_key).login_id == stamped
    assert is_logged_in(here)
    assert not is_logged_in(elsewhere)
    run_pending_requests()
    assert is_logged_in(here)
