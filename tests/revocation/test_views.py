"""HTML pages: the sessions page, the staff dashboard, the auth pages, and /healthz."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery import current_app
from django.contrib.auth.models import Group
from django.core import mail
from django.db import connection
from django.db.utils import ConnectionHandler
from django.test import Client

from revocation import services, views
from revocation.models import RevocationRequest, UserSession
from tests.conftest import OPERATOR_PERMS, csrf_client, is_logged_in, logged_in_client
from tests.support import free_port, link_key, row_of

pytestmark = pytest.mark.django_db
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


def login_with_form(user: Any, **headers: Any) -> Client:
    """Log in through the login page (so device and IP are recorded) and return the client."""
    client = Client(headers=headers)
    response = client.post(
        "/accounts/login/", {"username": user.username, "password": "pw-secret-1"}
    )
    assert response.status_code == 302
    return client


# --- The sessions page ----------------------------------------------------------------


def test_sessions_page_lists_devices_and_marks_the_current_one(
    any_engine: str, make_user: Any
) -> None:
    user = make_user()
    here = login_with_form(user, user_agent=FIREFOX)
    elsewhere = logged_in_client(user)

    page = here.get("/sessions/").content.decode()

    assert "Firefox on Linux" in page
    assert page.count("This session") == 1
    assert "127.0.0.1" in page
    assert "Log out other sessions" in page
    other = row_of(elsewhere)
    assert f'action="/sessions/{other.pk}/logout/"' in page
    # Relative times, with the exact time on hover (in the language's format, with the zone).
    assert re.search(
        r'<time datetime="[^"]+" title="\w+\.? \d+, \d{4}, [^"]+ UTC">just now</time>', page
    )
    for key in (here.session.session_key, elsewhere.session.session_key):
        assert key and key not in page
    assert "/revocations/" not in page


def test_operators_see_a_link_to_the_dashboard(operator: Any, make_user: Any) -> None:
    page = logged_in_client(operator).get("/sessions/").content.decode()
    assert 'href="/revocations/"' in page
    staff_only = logged_in_client(make_user(is_staff=True)).get("/sessions/").content.decode()
    assert "/revocations/" not in staff_only


def test_sessions_page_needs_login() -> None:
    response = Client().get("/sessions/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/sessions/")


def test_log_out_one_session_ends_it_now_and_says_so(
    any_engine: str, make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    user = make_user()
    here, token = csrf_client(user)
    elsewhere = logged_in_client(user)
    other = row_of(elsewhere)

    # A signed cookie is ended by a fence, mirrored into the cache when the request commits.
    with django_capture_on_commit_callbacks(execute=True):
        response = here.post(
            f"/sessions/{other.pk}/logout/", {"csrfmiddlewaretoken": token}, follow=True
        )

    assert response.redirect_chain[-1][0] == "/sessions/"
    assert "That session is logged out." in response.content.decode()
    assert not is_logged_in(elsewhere)
    assert is_logged_in(here)


def test_log_out_the_current_session_goes_to_the_login_page(
    any_engine: str, make_user: Any
) -> None:
    user = make_user()
    here, token = csrf_client(user)
    current = row_of(here)
    response = here.post(f"/sessions/{current.pk}/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert not is_logged_in(here)


def test_log_out_someone_elses_session_is_404_and_ends_nothing(
    any_engine: str, make_user: Any
) -> None:
    attacker, victim = make_user(), make_user()
    client, token = csrf_client(attacker)
    victim_client = logged_in_client(victim)
    victims = UserSession.objects.get(user=victim)

    response = client.post(f"/sessions/{victims.pk}/logout/", {"csrfmiddlewaretoken": token})

    assert response.status_code == 404
    assert is_logged_in(victim_client)
    assert UserSession.objects.filter(pk=victims.pk).exists()


def test_log_out_without_csrf_token_is_403_and_ends_nothing(
    any_engine: str, make_user: Any
) -> None:
    user = make_user()
    here, _ = csrf_client(user)
    elsewhere = logged_in_client(user)
    other = row_of(elsewhere)

    assert here.post(f"/sessions/{other.pk}/logout/").status_code == 403
    assert here.post("/sessions/logout-others/").status_code == 403
    assert is_logged_in(elsewhere)
    assert not RevocationRequest.objects.exists()


def test_log_out_buttons_only_accept_post(make_user: Any) -> None:
    user = make_user()
    client = logged_in_client(user)
    own = UserSession.objects.get(user=user)
    assert client.get(f"/sessions/{own.pk}/logout/").status_code == 405
    assert client.get("/sessions/logout-others/").status_code == 405
    assert is_logged_in(client)


def test_log_out_other_sessions_asks_the_workers_and_keeps_this_one(
    any_engine: str, make_user: Any
) -> None:
    user = make_user()
    here, token = csrf_client(user)

    response = here.post("/sessions/logout-others/", {"csrfmiddlewaretoken": token}, follow=True)

    assert "Your other sessions are being logged out" in response.content.decode()
    request = RevocationRequest.objects.get()
    assert request.user_ids == [user.pk]
    assert request.keep_session_key == link_key(here)
    assert request.requested_by == user


# --- The revocation dashboard ------------------------------------------------------------


@pytest.fixture
def staff_client(make_user: Any) -> tuple[Client, str]:
    """A client of a user who may start and read revocations."""
    return csrf_client(make_user(username="ops", perms=OPERATOR_PERMS))


EVERYONE = {"target": "everyone", "reason": "x", "confirm": "on"}


@pytest.mark.parametrize("fields", [{}, {"is_staff": True}], ids=["plain user", "is_staff alone"])
def test_dashboard_needs_login_and_the_permissions(make_user: Any, fields: dict[str, Any]) -> None:
    assert Client().get("/revocations/").status_code == 302
    client, token = csrf_client(make_user(**fields))
    assert client.get("/revocations/").status_code == 403
    response = client.post("/revocations/", {**EVERYONE, "csrfmiddlewaretoken": token})
    assert response.status_code == 403
    assert not RevocationRequest.objects.exists()


def test_dashboard_view_permission_lists_but_cannot_start(make_user: Any) -> None:
    services.revoke_sessions(everyone=True, reason="earlier incident")
    client, token = csrf_client(make_user(perms=("view_revocationrequest",)))

    page = client.get("/revocations/").content.decode()
    posted = client.post("/revocations/", {**EVERYONE, "csrfmiddlewaretoken": token})

    assert "earlier incident" in page
    assert "Start a revocation" not in page
    assert posted.status_code == 403
    assert RevocationRequest.objects.count() == 1


def test_dashboard_add_permission_starts_but_lists_nothing(make_user: Any) -> None:
    services.revoke_sessions(everyone=True, reason="earlier incident")
    client, token = csrf_client(make_user(perms=("add_revocationrequest",)))

    page = client.get("/revocations/").content.decode()
    client.post("/revocations/", {**EVERYONE, "csrfmiddlewaretoken": token})

    assert "Start a revocation" in page
    assert "earlier incident" not in page
    assert RevocationRequest.objects.count() == 2


def test_dashboard_lists_recent_requests_with_progress(
    staff_client: tuple[Client, str], make_user: Any
) -> None:
    client, _ = staff_client
    target = make_user()
    services.revoke_user_sessions(target, reason="stolen phone", requested_by=target)
    RevocationRequest.objects.update(users_done=1, sessions_revoked=3, state="done")

    page = client.get("/revocations/").content.decode()

    assert "stolen phone" in page
    assert f"users {target.pk}" in page
    assert target.username in page
    assert 'class="badge done"' in page
    assert '<progress max="1" value="1"' in page
    assert "3</span> sessions revoked" in page


def test_dashboard_starts_a_revocation_by_usernames(
    staff_client: tuple[Client, str], make_user: Any
) -> None:
    client, token = staff_client
    a, b = make_user(), make_user()
    response = client.post(
        "/revocations/",
        {
            "target": "users",
            "usernames": f"{a.username}, {b.username}",
            "reason": "offboarding",
            "csrfmiddlewaretoken": token,
        },
        follow=True,
    )
    request = RevocationRequest.objects.get()
    assert request.user_ids == sorted([a.pk, b.pk])
    assert request.reason == "offboarding"
    assert request.requested_by.username == "ops"  # type: ignore[union-attr]
    assert f"Revocation #{request.pk} started" in response.content.decode()


def test_dashboard_starts_a_group_revocation(staff_client: tuple[Client, str]) -> None:
    client, token = staff_client
    Group.objects.create(name="contractors")
    client.post(
        "/revocations/",
        {"target": "group", "group": "contractors", "reason": "r", "csrfmiddlewaretoken": token},
    )
    assert RevocationRequest.objects.get().group_name == "contractors"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"target": "users", "usernames": "ghost"}, "unknown user &#x27;ghost&#x27;"),
        ({"target": "users", "usernames": ""}, "name at least one user"),
        ({"target": "group", "group": "no-such-group"}, "unknown group"),
        ({"target": "scope", "scope": "org", "value": ""}, "scope value is blank"),
        ({"target": "scope", "scope": "nope", "value": "1"}, "Select a valid choice"),
        ({"target": "scope", "scope": "org", "value": "abc"}, "invalid value &#x27;abc&#x27;"),
        ({"target": "group", "group": "a\x00b"}, "Null characters are not allowed."),
        ({"target": "users", "usernames": "x", "reason": "r" * 256}, "at most 255 characters"),
        ({"target": "users", "usernames": "x", "reason": ""}, "This field is required."),
    ],
)
def test_dashboard_rejects_bad_input_and_creates_nothing(
    staff_client: tuple[Client, str], data: dict[str, str], error: str
) -> None:
    client, token = staff_client
    response = client.post("/revocations/", {"reason": "r", **data, "csrfmiddlewaretoken": token})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not RevocationRequest.objects.exists()


def test_everyone_needs_a_confirmation_step(staff_client: tuple[Client, str]) -> None:
    client, token = staff_client
    data = {"target": "everyone", "reason": "breach", "csrfmiddlewaretoken": token}

    first = client.post("/revocations/", data)

    assert "Yes, log out everyone" in first.content.decode()
    assert not RevocationRequest.objects.exists()
    client.post("/revocations/", {**data, "confirm": "on"})
    assert RevocationRequest.objects.get().target == "everyone"


def test_dashboard_form_without_csrf_token_is_403(staff_client: tuple[Client, str]) -> None:
    client, _ = staff_client
    response = client.post("/revocations/", {"target": "everyone", "reason": "r", "confirm": "on"})
    assert response.status_code == 403
    assert not RevocationRequest.objects.exists()


# --- Auth pages ----------------------------------------------------------------------------


def test_login_page_has_the_contract_field_names() -> None:
    page = Client().get("/accounts/login/").content.decode()
    assert 'name="username"' in page and 'name="password"' in page
    assert 'for="id_username"' in page and 'for="id_password"' in page


def test_wrong_password_shows_an_error(make_user: Any) -> None:
    user = make_user()
    response = Client().post("/accounts/login/", {"username": user.username, "password": "nope"})
    assert "Please enter a correct username and password" in response.content.decode()


def test_logout_is_a_post_and_ends_the_session(make_user: Any) -> None:
    client, token = csrf_client(make_user())
    response = client.post("/accounts/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert not is_logged_in(client)


def test_password_change_records_who_asked(make_user: Any) -> None:
    user = make_user()
    client = logged_in_client(user)
    client.post(
        "/accounts/password_change/",
        {
            "old_password": "pw-secret-1",
            "new_password1": "a-new-long-passphrase-9",
            "new_password2": "a-new-long-passphrase-9",
        },
    )
    request = RevocationRequest.objects.get()
    assert (request.reason, request.requested_by) == ("password changed", user)


def test_password_change_page_says_it_logs_out_other_sessions(make_user: Any) -> None:
    client = logged_in_client(make_user())
    page = client.get("/accounts/password_change/").content.decode()
    assert "logs out all your other sessions" in page
    assert 'name="old_password"' in page


def test_password_reset_flow_sends_a_link_that_sets_a_new_password(make_user: Any) -> None:
    user = make_user(email="a@example.com")
    client = Client()

    response = client.post("/accounts/password_reset/", {"email": "a@example.com"}, follow=True)
    assert "Check your email" in response.content.decode()
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/reset/\S+)", str(mail.outbox[0].body))
    assert link is not None
    form = client.get(link.group(1), follow=True)
    assert "Choose a new password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "brand-new-passphrase-7", "new_password2": "brand-new-passphrase-7"},
        follow=True,
    )

    assert "Your new password is set" in done.content.decode()
    # A reset logs the account out everywhere (through the revocation pipeline).
    request = RevocationRequest.objects.get()
    assert request.user_ids == [user.pk]
    assert request.keep_session_key == ""


# --- /healthz ------------------------------------------------------------------------------


def test_healthz_is_ok_when_database_and_broker_are_up(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}


@pytest.fixture
def broker_url(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the Celery app at another broker URL for this test."""

    def use(url: str) -> None:
        # The raw key (None: "same as broker_url"), not the property, so undo restores it.
        monkeypatch.setitem(current_app.conf, "broker_write_url", url)

    return use


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a black-holed broker)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield int(server.getsockname()[1])


def test_healthz_is_503_when_the_broker_refuses(client: Client, broker_url: Any) -> None:
    broker_url(f"redis://127.0.0.1:{free_port()}/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "ok"
    assert response.json()["broker"].startswith("unavailable")


def test_healthz_does_not_hang_on_a_silent_broker(
    client: Client, broker_url: Any, silent_server: int
) -> None:
    broker_url(f"redis://127.0.0.1:{silent_server}/0")
    started = time.monotonic()
    response = client.get("/healthz")
    # Bounded by HEALTH_TIMEOUT, not by the broker's own retry policy (generous margin).
    assert time.monotonic() - started < 5 * views.HEALTH_TIMEOUT
    assert response.status_code == 503
    assert response.json()["broker"].startswith("unavailable")


def test_healthz_is_503_when_the_database_is_unreachable(
    client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    broken = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "no" / "db")}}
    )["default"]
    monkeypatch.setattr(views, "connection", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "unavailable: OperationalError", "broker": "ok"}
    assert connection.is_usable()
