"""The revocation pipeline end to end: durable request, real broker, real worker."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from revocation import services
from revocation.models import RevocationRequest, UserSession
from tests.conftest import is_logged_in, logged_in_client
from tests.support import assert_sessions_gone, assert_sessions_kept, session_key

pytestmark = pytest.mark.django_db(transaction=True)
State = RevocationRequest.State


@pytest.mark.worker
def test_revoking_a_user_ends_all_their_sessions_and_no_one_elses(
    session_engine: str, make_user: Any, start_worker: Any, wait_done: Any
) -> None:
    u, v = make_user(), make_user()
    u_laptop, u_phone, v_laptop = logged_in_client(u), logged_in_client(u), logged_in_client(v)
    start_worker()

    request = wait_done(services.revoke_user_sessions(u, reason="compromised"))

    assert request.state == State.DONE
    assert request.sessions_revoked == 2
    assert (request.users_done, request.users_total) == (1, 1)
    # Gone from storage (rows, cached copies, mappings), not only refused by the fence.
    assert_sessions_gone([session_key(u_laptop), session_key(u_phone)])
    assert_sessions_kept([session_key(v_laptop)])
    # The old cookies no longer work - through the cache too on cached_db and cache.
    assert not is_logged_in(u_laptop)
    assert not is_logged_in(u_phone)
    assert is_logged_in(v_laptop)
    assert not UserSession.objects.filter(user=u).exists()
    assert UserSession.objects.filter(user=v).count() == 1


@pytest.mark.worker
def test_keep_session_key_logs_out_only_the_other_sessions(
    session_engine: str, make_user: Any, start_worker: Any, wait_done: Any
) -> None:
    u = make_user()
    here, elsewhere = logged_in_client(u), logged_in_client(u)
    start_worker()

    wait_done(services.revoke_user_sessions(u, keep_session_key=here.session.session_key))

    assert_sessions_gone([session_key(elsewhere)])
    assert_sessions_kept([session_key(here)])
    assert is_logged_in(here)
    assert not is_logged_in(elsewhere)


@pytest.mark.worker
def test_password_change_view_revokes_every_other_session(
    session_engine: str, make_user: Any, start_worker: Any, wait_done: Any
) -> None:
    u = make_user()
    here, elsewhere = logged_in_client(u), logged_in_client(u)
    old_key = session_key(elsewhere)
    start_worker()

    response = here.post(
        "/accounts/password_change/",
        {
            "old_password": "pw-secret-1",
            "new_password1": "a-new-long-passphrase-9",
            "new_password2": "a-new-long-passphrase-9",
        },
    )
    assert response.status_code == 302
    request = wait_done(RevocationRequest.objects.get(user_ids=[u.pk]))

    assert request.reason == "password changed"
    assert request.keep_session_key == here.session.session_key
    assert_sessions_gone([old_key])
    assert_sessions_kept([session_key(here)])
    assert is_logged_in(here)
    assert not is_logged_in(elsewhere)
    assert list(UserSession.objects.filter(user=u).values_list("session_key", flat=True)) == [
        here.session.session_key
    ]


@pytest.mark.worker
def test_password_set_outside_a_request_revokes_all_sessions(
    make_user: Any, start_worker: Any, wait_done: Any
) -> None:
    u = make_user()
    a, b = logged_in_client(u), logged_in_client(u)
    start_worker()

    u.set_password("reset-by-support-77")
    u.save()

    wait_done(RevocationRequest.objects.get(user_ids=[u.pk]))
    assert_sessions_gone([session_key(a), session_key(b)])
    assert not is_logged_in(a) and not is_logged_in(b)


def test_sessions_created_after_the_request_survive(make_user: Any, wait_done: Any) -> None:
    u = make_user()
    before = logged_in_client(u)
    request = services.revoke_user_sessions(u)
    after = logged_in_client(u)

    # Carry the request out in this process: the cutoff is what is tested here.
    assert services.run_request(request.pk, budget_seconds=60) is False
    request.refresh_from_db()
    assert request.state == State.DONE
    assert_sessions_gone([session_key(before)])
    assert_sessions_kept([session_key(after)])
    assert not is_logged_in(before)
    assert is_logged_in(after)


def test_a_page_that_runs_twice_is_harmless(make_user: Any, settings: Any) -> None:
    settings.REVOCATION_BATCH_SIZE = 1
    users = [make_user() for _ in range(3)]
    clients = [logged_in_client(u) for u in users]
    request = services.revoke_sessions(user_ids=[u.pk for u in users])

    # First delivery handles one page, then dies before its next publish.
    from revocation.services.jobs import _process_page

    assert _process_page(request.pk) is True
    # A crashed earlier attempt may already have deleted some sessions of the next page.
    from revocation.deletion import delete_sessions

    delete_sessions([clients[1].session.session_key])
    # Redelivered twice over: both copies resume from the committed cursor.
    assert services.run_request(request.pk, budget_seconds=60) is False
    assert services.run_request(request.pk, budget_seconds=60) is False
    request.refresh_from_db()
    assert request.state == State.DONE
    assert (request.users_done, request.users_total) == (3, 3)
    assert request.sessions_revoked == 3
    assert_sessions_gone(session_key(c) for c in clients)
    assert not any(is_logged_in(c) for c in clients)


def test_a_user_with_more_sessions_than_a_chunk_loses_them_all(
    session_engine: str, make_user: Any, settings: Any
) -> None:
    settings.REVOCATION_BATCH_SIZE = 1  # a chunk is 5 mapping rows
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "revocation.middleware.RevocationMiddleware"
    ]  # the fence would hide a surviving session: check the deletion alone
    u, v = make_user(), make_user()
    clients = [logged_in_client(u) for _ in range(7)]
    bystander = logged_in_client(v)
    # A mapping whose session is already gone (an earlier crashed attempt) is harmless.
    from revocation.deletion import delete_sessions

    delete_sessions([clients[0].session.session_key])

    request = services.revoke_user_sessions(u)
    assert services.run_request(request.pk, budget_seconds=60) is False

    request.refresh_from_db()
    assert (request.state, request.sessions_revoked) == (State.DONE, 7)
    assert_sessions_gone(session_key(c) for c in clients)
    assert not any(is_logged_in(c) for c in clients)
    assert is_logged_in(bystander)
    assert list(UserSession.objects.values_list("user_id", flat=True)) == [v.pk]


def test_sessions_revoked_signal_reports_the_count(make_user: Any) -> None:
    from revocation.signals import sessions_revoked

    u = make_user()
    logged_in_client(u), logged_in_client(u)
    seen: list[tuple[int, int]] = []

    def receiver(
        sender: Any, revocation: RevocationRequest, sessions_revoked: int, **kw: Any
    ) -> None:
        seen.append((revocation.pk, sessions_revoked))

    sessions_revoked.connect(receiver)
    try:
        request = services.revoke_user_sessions(u)
        services.run_request(request.pk, budget_seconds=60)
    finally:
        sessions_revoked.disconnect(receiver)
    assert seen == [(request.pk, 2)]


def test_request_row_commits_before_the_work(make_user: Any) -> None:
    u = make_user()
    client = logged_in_client(u)
    request = services.revoke_user_sessions(u, reason="audit me", requested_by=u)
    stored = RevocationRequest.objects.get(pk=request.pk)
    assert stored.state == State.PENDING
    assert (stored.reason, stored.requested_by_id) == ("audit me", u.pk)
    # No session was deleted yet: the web handler returned before the work. (The
    # fence already refuses the cookie; see test_fences.)
    assert UserSession.objects.filter(session_key=client.session.session_key).exists()
    from revocation.models import RevocationFence

    assert RevocationFence.objects.get(key=f"user:{u.pk}").not_before == stored.created_at


def test_unknown_users_create_nothing(make_user: Any) -> None:
    from revocation.exceptions import UnknownUser

    u = make_user()
    with pytest.raises(UnknownUser, match="999999"):
        services.revoke_sessions(user_ids=[u.pk, 999999])
    assert not RevocationRequest.objects.exists()


def test_anonymous_client_is_unaffected(make_user: Any) -> None:
    assert not is_logged_in(Client())
