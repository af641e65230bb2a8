"""The UserSession link follows the session through every key change."""

from __future__ import annotations

import time
from typing import Any

import django
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connections
from django.test import AsyncClient, Client, RequestFactory

from revocation import engines, linking, stamps
from revocation.devices import describe
from revocation.models import RevocationRequest, UserSession
from revocation.selectors import sessions_for_user
from tests.conftest import is_logged_in, logged_in_client

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


def cookie_key(client: Client | AsyncClient) -> str | None:
    """Return the session key the client holds."""
    morsel = client.cookies.get(django_settings.SESSION_COOKIE_NAME)
    return morsel.value if morsel and morsel.value else None


def links(user: Any) -> list[str]:
    """Return the session keys linked to `user`."""
    return sorted(UserSession.objects.filter(user=user).values_list("session_key", flat=True))


def whoami(client: Client) -> Any:
    """Return the user id the server sees for this client."""
    return client.get("/t/whoami/").json()["user"]


@pytest.mark.django_db
def test_login_from_anonymous_session_links_the_cycled_key(
    session_engine: str, make_user: Any
) -> None:
    user = make_user()
    client = Client()
    client.get("/t/anon/")
    anon_key = cookie_key(client)
    assert anon_key
    client.post(f"/t/login/{user.pk}/")
    key = cookie_key(client)
    assert key and key != anon_key
    assert links(user) == [key]
    assert [us.session_key for us in sessions_for_user(user)] == [key]


@pytest.mark.django_db
def test_login_over_another_user_moves_the_link(session_engine: str, make_user: Any) -> None:
    alice, bob = make_user(), make_user()
    client = Client()
    client.post(f"/t/login/{alice.pk}/")
    alice_key = cookie_key(client)
    assert links(alice) == [alice_key]
    # Logging in as someone else flushes: the key is None when user_logged_in fires.
    client.post(f"/t/login/{bob.pk}/")
    bob_key = cookie_key(client)
    assert bob_key and bob_key != alice_key
    assert links(alice) == []
    assert links(bob) == [bob_key]
    assert whoami(client) == bob.pk


@pytest.mark.django_db
def test_update_session_auth_hash_moves_the_link_and_keeps_sign_in_time(
    session_engine: str, make_user: Any
) -> None:
    user = make_user()
    client = Client()
    client.post(f"/t/login/{user.pk}/")
    old_key = cookie_key(client)
    signed_in = UserSession.objects.get(session_key=old_key).created_at
    client.post("/t/rehash/")
    new_key = cookie_key(client)
    assert new_key != old_key
    assert links(user) == [new_key]
    assert UserSession.objects.get(session_key=new_key).created_at == signed_in
    assert whoami(client) == user.pk


@pytest.mark.django_db
def test_secret_key_fallback_rehash_moves_the_link(
    session_engine: str, make_user: Any, settings: Any
) -> None:
    user = make_user()
    client = Client()
    client.post(f"/t/login/{user.pk}/")
    old_key = cookie_key(client)
    # Rotate SECRET_KEY: get_user() accepts the old hash via the fallback and cycles the key.
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-brand-new-secret-key-for-this-test"
    assert whoami(client) == user.pk
    new_key = cookie_key(client)
    assert new_key != old_key
    assert links(user) == [new_key]


@pytest.mark.skipif(
    django.VERSION < (5, 0), reason="Django 4.2 has no alogin/aupdate_session_auth_hash (5.0+)"
)
@pytest.mark.django_db(transaction=True)
def test_async_login_and_rehash_move_the_link(session_engine: str, make_user: Any) -> None:
    import asyncio

    alice, bob = make_user(), make_user()
    client = AsyncClient()

    async def scenario() -> tuple[str | None, str | None, str | None]:
        await client.post(f"/t/alogin/{alice.pk}/")
        first = cookie_key(client)
        await client.post("/t/arehash/")
        second = cookie_key(client)
        await client.post(f"/t/alogin/{bob.pk}/")
        # The async handler ran its ORM calls in a worker thread: close that connection.
        await sync_to_async(connections.close_all)()
        return first, second, cookie_key(client)

    first, second, third = asyncio.run(scenario())
    assert len({first, second, third}) == 3
    assert links(alice) == []
    assert links(bob) == [third]


@pytest.mark.django_db
def test_logout_removes_the_link(session_engine: str, make_user: Any) -> None:
    user = make_user()
    client = Client()
    client.post(f"/t/login/{user.pk}/")
    assert links(user)
    client.post("/t/logout/")
    assert links(user) == []
    assert whoami(client) is None


@pytest.mark.django_db
def test_test_client_login_is_linked(session_engine: str, make_user: Any) -> None:
    user = make_user()
    client = Client()
    client.force_login(user)
    assert links(user) == [cookie_key(client)]
    client.logout()
    assert links(user) == []


@pytest.mark.django_db
def test_each_device_gets_its_own_link(session_engine: str, make_user: Any) -> None:
    user = make_user()
    laptop, phone = Client(), Client(HTTP_USER_AGENT=IPHONE)
    laptop.post(f"/t/login/{user.pk}/")
    phone.post(f"/t/login/{user.pk}/")
    assert links(user) == sorted([str(cookie_key(laptop)), str(cookie_key(phone))])
    iphone = UserSession.objects.get(session_key=cookie_key(phone))
    assert "iOS" in describe(iphone.user_agent)


@pytest.mark.django_db
def test_failing_recorder_does_not_break_login(
    make_user: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    user = make_user()

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("mapping table unavailable")

    monkeypatch.setattr("revocation.services.link_session", broken)
    client = Client()
    response = client.post(f"/t/login/{user.pk}/")
    assert response.status_code == 200
    assert whoami(client) == user.pk
    assert "could not link session" in caplog.text
    assert links(user) == []


@pytest.mark.django_db
def test_last_seen_is_written_at_most_once_per_interval(
    make_user: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.REVOCATION_TOUCH_INTERVAL = 300
    user = make_user()
    client = Client()
    client.post(f"/t/login/{user.pk}/")
    key = cookie_key(client)
    row = UserSession.objects.get(session_key=key)
    for _ in range(3):
        whoami(client)
    assert UserSession.objects.get(session_key=key).last_seen_at == row.last_seen_at

    # Move the clock past the interval: the next request records activity once.
    later = time.time() + 301
    monkeypatch.setattr(linking, "clock", lambda: later)
    client.get("/t/whoami/", REMOTE_ADDR="10.0.0.9")
    touched = UserSession.objects.get(session_key=key)
    assert touched.last_seen_at > row.last_seen_at
    assert touched.ip == "10.0.0.9"
    client.get("/t/whoami/", REMOTE_ADDR="10.0.0.10")
    assert UserSession.objects.get(session_key=key).ip == "10.0.0.9"


@pytest.mark.django_db
def test_session_hash_survives_link(make_user: Any) -> None:
    user = make_user()
    client = Client()
    client.post(f"/t/login/{user.pk}/")
    session = client.session
    assert session[HASH_SESSION_KEY] == user.get_session_auth_hash()
    assert stamps.AUTH_AT in session


def test_a_request_without_session_cookie_does_not_touch_the_session(
    session_engine: str, make_user: Any
) -> None:
    """Public pages stay cacheable: no `Vary: Cookie`, no cookie, no session row."""
    response = Client().get("/t/public/")
    assert "Cookie" not in response.get("Vary", "")
    assert django_settings.SESSION_COOKIE_NAME not in response.cookies
    assert not UserSession.objects.exists()
    assert not Session.objects.exists()


def change_password(client: Client) -> Any:
    """Change the client's user's password through Django's view; return the response."""
    return client.post(
        "/accounts/password_change/",
        {
            "old_password": "pw-secret-1",
            "new_password1": "a-new-long-passphrase-9",
            "new_password2": "a-new-long-passphrase-9",
        },
    )


@pytest.mark.django_db(transaction=True)
def test_changing_your_own_password_fences_your_other_sessions_only(make_user: Any) -> None:
    user = make_user()
    here, elsewhere = logged_in_client(user), logged_in_client(user)

    assert change_password(here).status_code == 302

    request = RevocationRequest.objects.get()
    assert (request.user_ids, request.reason, request.requested_by) == (
        [user.pk],
        "password changed",
        user,
    )
    # Kept: the session that changed it, under the key the change rotated it to.
    assert request.keep_session_key == cookie_key(here)
    assert request.keep_login_id == here.session[linking.stamps.LOGIN_ID]
    assert is_logged_in(here)
    assert not is_logged_in(elsewhere)


@pytest.mark.django_db(transaction=True)
def test_a_failed_revocation_does_not_fail_the_password_change(
    make_user: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    user = make_user()
    client = logged_in_client(user)

    def unavailable(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database unavailable")

    monkeypatch.setattr("revocation.services.revoke_user_sessions", unavailable)
    assert change_password(client).status_code == 302

    user.refresh_from_db()
    assert user.check_password("a-new-long-passphrase-9")
    assert f"revocation: could not revoke other sessions of user {user.pk}" in caplog.messages


@pytest.mark.django_db(transaction=True)
def test_a_password_set_outside_a_request_revokes_every_session(make_user: Any) -> None:
    """A reset, the admin's shell, a command: nobody's session is kept, nobody asked."""
    user = make_user()
    a, b = logged_in_client(user), logged_in_client(user)

    user.set_password("reset-by-support-77")
    user.save()

    request = RevocationRequest.objects.get()
    assert (request.user_ids, request.reason, request.requested_by) == (
        [user.pk],
        "password changed",
        None,
    )
    assert (request.keep_session_key, request.keep_login_id) == ("", "")
    assert not is_logged_in(a) and not is_logged_in(b)


@pytest.mark.django_db
def test_a_password_saved_during_a_request_without_a_user_revokes_every_session(
    make_user: Any,
) -> None:
    """Without AuthenticationMiddleware a request has no `user`: nobody to keep."""

    user = make_user()
    request = RequestFactory().post("/api/set-password/")
    request.session = engines.store_class()()
    linking.begin(request)
    try:
        user.set_password("set-by-an-api-client-5")
        user.save()
    finally:
        linking.end(request)

    revocation = RevocationRequest.objects.get()
    assert (revocation.user_ids, revocation.keep_session_key) == ([user.pk], "")


# --- session_linked: one signal per sign-in, with the row ---------------------------------


@pytest.fixture
def linked_calls() -> Any:
    """Connect a receiver to session_linked for the test; yield what it received."""
    from revocation.signals import session_linked

    calls: list[dict[str, Any]] = []

    def record(sender: Any, **kwargs: Any) -> None:
        calls.append({"sender": sender, **kwargs})

    session_linked.connect(record, dispatch_uid="test.linked_calls")
    yield calls
    session_linked.disconnect(dispatch_uid="test.linked_calls")


@pytest.mark.django_db
def test_session_linked_is_sent_once_per_sign_in_with_the_row(
    session_engine: str, make_user: Any, linked_calls: list[dict[str, Any]]
) -> None:
    alice, bob = make_user(), make_user()
    client = Client(HTTP_USER_AGENT=IPHONE)
    client.post(f"/t/login/{alice.pk}/")
    (call,) = linked_calls
    assert call["sender"] is type(alice) and call["user"] == alice
    row = call["session"]
    assert isinstance(row, UserSession) and row.pk is not None
    assert (row.session_key, row.user_id, row.user_agent) == (cookie_key(client), alice.pk, IPHONE)
    assert call["request"].path == f"/t/login/{alice.pk}/"

    # A key rotation of the same sign-in, and later requests: nothing more.
    client.post("/t/rehash/")
    whoami(client)
    assert len(linked_calls) == 1
    # A sign-in over another user flushes: linked only after the view, and sent then.
    client.post(f"/t/login/{bob.pk}/")
    assert len(linked_calls) == 2
    assert linked_calls[1]["user"] == bob
    assert linked_calls[1]["session"].session_key == cookie_key(client)


@pytest.mark.django_db
def test_session_linked_is_not_sent_for_sessions_linked_on_first_sight(
    make_user: Any, settings: Any, linked_calls: list[dict[str, Any]]
) -> None:
    settings.REVOCATION_TOUCH_INTERVAL = 0
    user = make_user()
    client = Client()
    client.post(f"/t/login/{user.pk}/")
    UserSession.objects.all().delete()  # as if signed in before the app was installed
    linked_calls.clear()
    whoami(client)
    assert links(user) == [cookie_key(client)]
    assert linked_calls == []


def usersession_reads(queries: list[dict[str, Any]]) -> list[str]:
    """Return the SELECTs on the mapping table among `queries`."""
    table = UserSession._meta.db_table
    return [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith("SELECT") and table in q["sql"]
    ]


@pytest.mark.django_db
def test_with_no_receiver_a_sign_in_reads_nothing_for_the_signal(
    session_engine: str, make_user: Any
) -> None:
    from django.test.utils import CaptureQueriesContext

    from revocation.signals import session_linked

    user, other = make_user(), make_user()
    # The default configuration: the app's own e-mail receiver is off, so none.
    assert not session_linked.has_listeners(type(user))
    with CaptureQueriesContext(connections["default"]) as bare:
        Client().post(f"/t/login/{user.pk}/")
    assert usersession_reads(bare.captured_queries) == []

    session_linked.connect(lambda **kwargs: None, dispatch_uid="test.reads", weak=False)
    try:
        with CaptureQueriesContext(connections["default"]) as heard:
            Client().post(f"/t/login/{other.pk}/")
    finally:
        session_linked.disconnect(dispatch_uid="test.reads")
    assert len(usersession_reads(heard.captured_queries)) == 1
    assert len(heard.captured_queries) == len(bare.captured_queries) + 1


@pytest.mark.django_db
def test_a_failing_session_linked_receiver_does_not_break_login(
    make_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from revocation.signals import session_linked

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    user = make_user()
    session_linked.connect(broken, dispatch_uid="test.broken")
    try:
        client = Client()
        assert client.post(f"/t/login/{user.pk}/").status_code == 200
    finally:
        session_linked.disconnect(dispatch_uid="test.broken")
    assert whoami(client) == user.pk
    assert links(user) == [cookie_key(client)]
    assert "session_linked receiver" in caplog.text and "receiver bug" in caplog.text
