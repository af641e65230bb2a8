"""Signed-cookie sessions are listed and endable one by one, like those of every other engine.

The cookie is the session: its "key" changes on every save and nothing on the
server can delete it. So its UserSession row is keyed by the sign-in id stamped
into it (`cookie:<id>`), and ending one session records that sign-in's fence.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.utils import timezone

from revocation import engines, fences, linking, selectors, services, stamps
from revocation.app_settings import app_settings
from revocation.models import RevocationFence, UserSession
from revocation.signals import session_linked
from tests.conftest import ALL_ENGINES, csrf_client, is_logged_in, logged_in_client
from tests.support import copy_of, link_key, row_of, run_pending_requests

# Transactional: fences reach the cache on commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)

COOKIE = django_settings.SESSION_COOKIE_NAME
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture(autouse=True)
def signed_cookies(settings: Any) -> None:
    """Every test here runs on the signed_cookies engine."""
    settings.SESSION_ENGINE = ALL_ENGINES["signed_cookies"]


def sign_in(user: Any, **headers: Any) -> Client:
    """Return a client signed in as `user` through the real middleware stack."""
    client = Client(headers=headers)
    assert client.post(f"/t/login/{user.pk}/").status_code == 200
    return client


def test_a_sign_in_is_linked_by_its_sign_in_id_through_key_changes(make_user: Any) -> None:
    user = make_user()
    client = sign_in(user)
    login_id = stamps.login_id(client.session)
    row = UserSession.objects.get(user=user)
    assert (row.session_key, row.login_id) == (f"cookie:{login_id}", login_id)

    client.post("/t/rehash/")  # a password change's key rotation: a new cookie, the same sign-in
    assert is_logged_in(client)
    assert list(UserSession.objects.values_list("pk", "session_key")) == [(row.pk, row.session_key)]


def replay(cookie: str) -> Client:
    """Return a client holding a copy of `cookie`, as someone who copied it would."""
    client = Client()
    client.cookies[COOKIE] = cookie
    return client


def test_logging_out_ends_the_sign_in_and_every_copy_of_its_cookie(make_user: Any) -> None:
    client = sign_in(make_user())
    copy = client.cookies[COOKIE].value
    client.post("/t/logout/")
    assert not UserSession.objects.exists()
    assert not is_logged_in(replay(copy))
    assert not UserSession.objects.exists()


def test_signing_in_as_another_user_ends_the_first_sign_in(make_user: Any) -> None:
    first, second = make_user(), make_user()
    client = sign_in(first)
    copy = client.cookies[COOKIE].value
    client.post(f"/t/login/{second.pk}/")
    assert list(UserSession.objects.values_list("user_id", flat=True)) == [second.pk]
    assert row_of(client).user_id == second.pk
    assert not is_logged_in(replay(copy))
    assert is_logged_in(client)


def test_signing_in_again_is_a_new_sign_in_with_its_own_row(make_user: Any) -> None:
    user = make_user()
    client = sign_in(user)
    copy, before = client.cookies[COOKIE].value, row_of(client)
    client.post(f"/t/login/{user.pk}/")
    after = row_of(client)
    assert after.login_id != before.login_id
    assert list(UserSession.objects.values_list("pk", flat=True)) == [after.pk]
    assert not is_logged_in(replay(copy))


def test_the_page_and_the_api_list_each_browser_and_mark_this_one(make_user: Any) -> None:
    user = make_user()
    here = sign_in(user, user_agent=FIREFOX)
    sign_in(user)
    logged_in_client(make_user())

    items = here.get("/api/sessions/").json()["items"]
    page = here.get("/sessions/").content.decode()

    assert len(items) == 2
    assert [item["id"] for item in items if item["current"]] == [row_of(here).pk]
    assert "Firefox on Linux" in page and page.count("This session") == 1
    # The sign-in id is what a stolen row would let someone fence with: never shown.
    assert stamps.login_id(here.session) not in page + str(items)


def test_ending_one_session_logs_out_that_browser_and_keeps_this_one(make_user: Any) -> None:
    user = make_user()
    here, token = csrf_client(user)
    elsewhere = sign_in(user)
    other = row_of(elsewhere)
    stolen = elsewhere.cookies[COOKIE].value  # a copy of the cookie, kept by an attacker

    response = here.delete(f"/api/sessions/{other.pk}", headers={"X-CSRFToken": token})

    assert response.status_code == 204
    assert not UserSession.objects.filter(pk=other.pk).exists()
    assert RevocationFence.objects.filter(key=fences.login_key(other.login_id)).exists()
    assert not is_logged_in(replay(stolen))
    assert not is_logged_in(elsewhere)
    assert is_logged_in(here)
    assert [row_of(here).pk] == [r.pk for r in selectors.sessions_for_user(user)]


def test_ending_the_current_session_from_the_page_goes_to_the_login_page(make_user: Any) -> None:
    here, token = csrf_client(make_user())
    response = here.post(f"/sessions/{row_of(here).pk}/logout/", {"csrfmiddlewaretoken": token})
    assert response["Location"] == "/accounts/login/"
    assert not is_logged_in(here)
    assert not UserSession.objects.exists()


def test_another_users_session_cannot_be_ended(make_user: Any) -> None:
    attacker, victim = make_user(), make_user()
    client, token = csrf_client(attacker)
    victims = sign_in(victim)
    response = client.delete(f"/api/sessions/{row_of(victims).pk}", headers={"X-CSRFToken": token})
    assert response.status_code == 404
    assert is_logged_in(victims)
    assert not RevocationFence.objects.filter(key__startswith="login:").exists()


def test_the_admin_ends_the_selected_sessions(make_user: Any) -> None:
    operator = make_user(is_staff=True, perms=("view_usersession", "add_revocationrequest"))
    admin = logged_in_client(operator)
    user = make_user()
    ended, kept = sign_in(user), sign_in(user)

    response = admin.post(
        "/admin/revocation/usersession/",
        {
            "action": "end_selected",
            "_selected_action": [row_of(ended).pk, row_of(admin).pk],
        },
    )

    assert response.status_code == 302
    assert not is_logged_in(ended)
    assert is_logged_in(kept)
    assert is_logged_in(admin)  # an operator never ends their own session


def test_activity_is_recorded_once_per_interval(make_user: Any, monkeypatch: Any) -> None:
    user = make_user()
    client = sign_in(user)
    before = row_of(client).last_seen_at
    later = time.time() + app_settings.TOUCH_INTERVAL + 1
    monkeypatch.setattr(linking, "clock", lambda: later)

    response = client.get("/t/whoami/", REMOTE_ADDR="198.51.100.7")

    assert COOKIE in response.cookies  # the new activity stamp travels in the cookie
    row = row_of(client)
    assert (row.ip, row.last_seen_at > before) == ("198.51.100.7", True)
    assert COOKIE not in client.get("/t/whoami/").cookies  # not again within the interval


def cookie_from_before_sign_in_ids(user: Any, **stamped: Any) -> str:
    """Return a signed cookie of `user` signed in before sign-in ids existed."""
    store = engines.store_class()()
    store.update(
        {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: django_settings.AUTHENTICATION_BACKENDS[0],
            HASH_SESSION_KEY: user.get_session_auth_hash(),
            **stamped,
        }
    )
    store.save()
    return str(store.session_key)


def test_a_cookie_from_before_sign_in_ids_is_linked_on_first_sight(make_user: Any) -> None:
    user = make_user()
    client = replay(cookie_from_before_sign_in_ids(user))

    assert client.get("/t/whoami/").json()["user"] == user.pk  # first sight: stamped and linked
    assert client.get("/api/sessions/").json()["count"] == 1
    assert stamps.LOGIN_ID in client.session
    assert row_of(client).user_id == user.pk


def test_copies_of_a_cookie_from_before_sign_in_ids_are_one_session(
    make_user: Any, monkeypatch: Any
) -> None:
    """Each copy derives the same sign-in id: one row, and ending it ends every copy."""
    user = make_user()
    here = sign_in(user)
    cookie = cookie_from_before_sign_in_ids(user, **{stamps.AUTH_AT: time.time() - 10})
    browser = replay(cookie)
    assert is_logged_in(browser)
    start = time.time()
    for n in range(1, 3):  # each copy seen past the touch interval, so touched
        monkeypatch.setattr(
            linking, "clock", lambda n=n: start + n * (app_settings.TOUCH_INTERVAL + 1)
        )
        assert is_logged_in(replay(cookie))
    assert UserSession.objects.filter(user=user).count() == 2  # this browser's and `here`'s

    services.end_session(user, row_of(browser).pk, current_key=link_key(here))

    assert not is_logged_in(replay(cookie))
    assert not is_logged_in(browser)
    assert is_logged_in(here)


def test_a_request_in_flight_as_its_session_ends_does_not_list_it_again(
    make_user: Any, monkeypatch: Any
) -> None:
    user = make_user()
    here, elsewhere = sign_in(user), sign_in(user)
    in_flight = copy_of(elsewhere.cookies[COOKIE].value)  # passed the fence check
    ended = row_of(elsewhere)
    services.end_session(user, ended.pk, current_key=link_key(here))
    later = time.time() + app_settings.TOUCH_INTERVAL + 1
    monkeypatch.setattr(linking, "clock", lambda: later)
    request = RequestFactory().get("/")
    request.session = in_flight  # type: ignore[attr-defined]

    linking.touch(request, app_settings.TOUCH_INTERVAL)  # its response phase: the touch is due

    assert UserSession.objects.filter(session_key=ended.session_key).exists()
    assert [r.pk for r in selectors.sessions_for_user(user)] == [row_of(here).pk]
    call_command("clearsessions", verbosity=0)
    assert not UserSession.objects.filter(session_key=ended.session_key).exists()


def test_the_session_limit_logs_the_oldest_browser_out(make_user: Any, settings: Any) -> None:
    settings.REVOCATION_MAX_SESSIONS_PER_USER = 2
    user = make_user()
    oldest, middle = sign_in(user), sign_in(user)
    newest = sign_in(user)

    assert not is_logged_in(oldest)  # at once: the fence of its sign-in
    assert is_logged_in(middle) and is_logged_in(newest)
    run_pending_requests()
    assert {r.pk for r in selectors.sessions_for_user(user)} == {
        row_of(middle).pk,
        row_of(newest).pk,
    }


def test_the_session_limit_can_refuse_a_third_browser(make_user: Any, settings: Any) -> None:
    settings.REVOCATION_MAX_SESSIONS_PER_USER = 2
    settings.REVOCATION_MAX_SESSIONS_POLICY = "refuse"
    user = make_user()
    first, second = sign_in(user), sign_in(user)
    refused = Client()
    assert refused.post(f"/t/login/{user.pk}/").status_code == 403
    assert not is_logged_in(refused)
    assert is_logged_in(first) and is_logged_in(second)
    assert UserSession.objects.count() == 2


def test_log_out_others_keeps_this_browser_and_its_row(make_user: Any) -> None:
    user = make_user()
    here, token = csrf_client(user)
    elsewhere = sign_in(user)

    here.post("/sessions/logout-others/", {"csrfmiddlewaretoken": token})
    run_pending_requests()

    assert is_logged_in(here)
    assert not is_logged_in(elsewhere)
    assert [r.pk for r in selectors.sessions_for_user(user)] == [row_of(here).pk]


def test_two_requests_saving_in_either_order_keep_the_kept_browser(make_user: Any) -> None:
    """A double click on "log out other sessions": the cookie saved last is the older copy."""
    user = make_user()
    here, elsewhere = sign_in(user), sign_in(user)
    cookie = here.cookies[COOKIE].value
    first, second = copy_of(cookie), copy_of(cookie)

    services.revoke_user_sessions(user, keep_session=first)
    services.revoke_user_sessions(user, keep_session=second)
    second.save()
    first.save()
    here.cookies[COOKIE] = str(first.session_key)  # the browser keeps the last cookie it was sent

    assert is_logged_in(here)
    assert not is_logged_in(elsewhere)
    run_pending_requests()
    assert is_logged_in(here)
    assert UserSession.objects.filter(user=user).count() == 1


def test_a_row_is_listed_only_while_its_cookie_can_be_valid(make_user: Any) -> None:
    """A cookie is valid SESSION_COOKIE_AGE after its last save, at most a touch interval after
    its row's last touch."""
    user = make_user()
    alive, dead = row_of(sign_in(user)), row_of(sign_in(user))
    lifespan = django_settings.SESSION_COOKIE_AGE + app_settings.TOUCH_INTERVAL
    now = timezone.now()
    UserSession.objects.filter(pk=alive.pk).update(
        last_seen_at=now - timedelta(seconds=lifespan - 60)
    )
    UserSession.objects.filter(pk=dead.pk).update(last_seen_at=now - timedelta(seconds=lifespan))

    assert [r.pk for r in selectors.sessions_for_user(user)] == [alive.pk]
    call_command("clearsessions", verbosity=0)
    assert list(UserSession.objects.values_list("pk", flat=True)) == [alive.pk]


def test_session_linked_is_sent_with_the_row(make_user: Any) -> None:
    calls: list[Any] = []
    session_linked.connect(
        lambda sender, **kw: calls.append(kw["session"]), weak=False, dispatch_uid="t"
    )
    try:
        client = sign_in(make_user())
    finally:
        session_linked.disconnect(dispatch_uid="t")
    assert [row.pk for row in calls] == [row_of(client).pk]


def test_a_public_page_stays_cacheable(make_user: Any) -> None:
    response = Client().get("/t/public/")
    assert "Cookie" not in response.get("Vary", "")
    assert COOKIE not in response.cookies
    # Signed in: the cookie is read (the fence), but not rewritten within the interval.
    assert COOKIE not in sign_in(make_user()).get("/t/public/").cookies


def test_a_sign_in_fence_ends_that_sign_in_whatever_its_time(make_user: Any) -> None:
    """An older time too: another server's clock may be behind the one that signed in."""
    user = make_user()
    client, other = sign_in(user), sign_in(user)
    session = client.session
    signed_in = stamps.signed_in_at(session)
    fences.record([fences.login_key(stamps.login_id(other.session))], datetime.now(UTC))
    assert fences.is_fenced(session, signed_in) is False  # another sign-in's fence
    login = fences.login_key(stamps.login_id(session))
    fences.record([login], datetime.fromtimestamp(signed_in - 60, UTC))
    assert fences.is_fenced(session, signed_in) is True


def test_an_ended_session_stays_ended_when_its_own_request_keeps_it(make_user: Any) -> None:
    """Ended while its own "log out other sessions" was in flight: the keep must not revive it."""
    user = make_user()
    here, elsewhere = sign_in(user), sign_in(user)
    in_flight = copy_of(elsewhere.cookies[COOKIE].value)  # passed the fence check

    services.end_session(user, row_of(elsewhere).pk, current_key=link_key(here))
    services.revoke_user_sessions(user, keep_session=in_flight)
    in_flight.save()
    elsewhere.cookies[COOKIE] = str(in_flight.session_key)

    assert not is_logged_in(elsewhere)


def test_link_key_of_a_session_without_a_user_is_none(make_user: Any) -> None:
    client = Client()
    client.get("/t/anon/")
    assert engines.link_key(client.session) is None
    assert link_key(sign_in(make_user())).startswith(engines.COOKIE_PREFIX)
    left = engines.store_class()()
    left[stamps.LOGIN_ID] = stamps.new_login_id()  # a sign-in id left behind by its user
    left.save()
    assert engines.link_key(left) is None


def test_a_kept_copy_of_a_cookie_from_before_sign_in_ids_keeps_its_id_and_row(
    make_user: Any,
) -> None:
    """Two requests of it: one keeps the session and stamps the id, the other saves last."""
    user = make_user()
    cookie = cookie_from_before_sign_in_ids(user, **{stamps.AUTH_AT: time.time() - 10})
    assert is_logged_in(replay(cookie))  # first sight: linked under the derived id
    row = UserSession.objects.get(user=user)
    keeping, last = copy_of(cookie), copy_of(cookie)

    services.revoke_user_sessions(user, keep_session=keeping)
    keeping.save()
    last.save()  # without the id, with the sign-in stamp from before the keep
    browser = replay(str(last.session_key))

    assert is_logged_in(browser)  # spared by the keep, which re-stamps the sign-in...
    assert is_logged_in(browser)  # ...and the id derived from the stamp before it
    assert list(UserSession.objects.values_list("pk", "session_key")) == [(row.pk, row.session_key)]


def test_a_fence_outlives_a_cookie_saved_by_a_request_in_flight_as_it_was_recorded(
    make_user: Any, monkeypatch: Any
) -> None:
    """That request passed its check first and saved a cookie valid for SESSION_COOKIE_AGE."""
    age = timedelta(seconds=django_settings.SESSION_COOKIE_AGE)
    user = make_user()
    signed_in = timezone.now() - age - timedelta(minutes=2)
    monkeypatch.setattr(linking, "clock", lambda: signed_in.timestamp())
    client = sign_in(user)  # its cookie is signed now: the save of the request in flight
    monkeypatch.undo()
    fences.record([fences.user_key(user.pk)], signed_in + timedelta(minutes=1))

    call_command("clearsessions", verbosity=0)  # the fence is older than SESSION_COOKIE_AGE
    cache.clear()  # and its cached copy expired

    assert not is_logged_in(client)
