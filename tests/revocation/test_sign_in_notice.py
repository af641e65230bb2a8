"""The opt-in e-mail about a sign-in from a device or country none of the user's sessions had."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import Client

from revocation import selectors, services
from revocation.models import UserSession
from revocation.signals import session_linked
from tests.conftest import is_logged_in

pytestmark = pytest.mark.django_db

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


class BrokenBackend(BaseEmailBackend):
    """An e-mail backend whose server is down."""

    def send_messages(self, email_messages: Any) -> int:
        raise ConnectionRefusedError("smtp server down")


@pytest.fixture
def notices(settings: Any) -> None:
    """Turn the notice on."""
    settings.REVOCATION_NEW_SIGN_IN_EMAIL = True


@pytest.fixture
def sign_in(django_capture_on_commit_callbacks: Any) -> Any:
    """Return a function that signs a user in from a user agent, running on-commit hooks."""

    def sign_in(user: Any, user_agent: str = FIREFOX) -> Client:
        client = Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR="203.0.113.9")
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(f"/t/login/{user.pk}/").status_code == 200
        return client

    return sign_in


def test_a_second_device_is_told_and_the_same_device_is_not(
    any_engine: str, make_user: Any, notices: None, sign_in: Any
) -> None:
    user = make_user(email="ada@example.org")
    sign_in(user, FIREFOX)
    # A first sign-in has nothing to be new against: no mail.
    assert mail.outbox == []

    sign_in(user, IPHONE)
    (notice,) = mail.outbox
    assert notice.to == ["ada@example.org"]
    assert notice.subject == "New sign-in to your account on testserver"
    assert f"Hello {user.username}," in notice.body
    assert "Safari on iPhone (iOS 17)" in notice.body and "203.0.113.9" in notice.body
    assert "http://testserver/sessions/" in notice.body

    sign_in(user, FIREFOX)
    sign_in(user, IPHONE)
    assert len(mail.outbox) == 1


def test_the_same_device_from_another_country_is_told(
    make_user: Any, notices: None, sign_in: Any
) -> None:
    user = make_user(email="ada@example.org")
    sign_in(user, FIREFOX)
    UserSession.objects.filter(user=user).update(country="DE", city="Berlin")
    sign_in(user, FIREFOX)  # the place is unknown here: "" is not DE
    assert len(mail.outbox) == 1


def test_nothing_is_sent_with_the_setting_off(make_user: Any, sign_in: Any) -> None:
    user = make_user(email="ada@example.org")
    assert not session_linked.has_listeners(get_user_model())
    sign_in(user, FIREFOX)
    sign_in(user, IPHONE)
    assert mail.outbox == []


def test_the_setting_connects_and_disconnects_the_notice(settings: Any) -> None:
    user_model = get_user_model()
    settings.REVOCATION_NEW_SIGN_IN_EMAIL = True
    assert session_linked.has_listeners(user_model)
    settings.REVOCATION_NEW_SIGN_IN_EMAIL = False
    assert not session_linked.has_listeners(user_model)


def test_a_user_without_an_address_is_not_told(
    make_user: Any, notices: None, sign_in: Any, django_assert_num_queries: Any
) -> None:
    user = make_user(email="")
    sign_in(user, FIREFOX)
    sign_in(user, IPHONE)
    assert mail.outbox == []
    # Not even looked up.
    with django_assert_num_queries(0):
        row = UserSession(user=user, user_agent="new")
        assert services.notify_new_sign_in(user=user, session=row, request=None) is False


def test_the_mail_goes_only_after_the_login_commits(
    make_user: Any, notices: None, django_capture_on_commit_callbacks: Any
) -> None:
    user = make_user(email="ada@example.org")
    Client(HTTP_USER_AGENT=FIREFOX).post(f"/t/login/{user.pk}/")
    with django_capture_on_commit_callbacks() as hooks:
        Client(HTTP_USER_AGENT=IPHONE).post(f"/t/login/{user.pk}/")
    assert mail.outbox == []  # a login rolled back here would send nothing
    for hook in hooks:
        hook()
    assert len(mail.outbox) == 1


def test_a_mail_failure_does_not_fail_the_login(
    make_user: Any,
    notices: None,
    sign_in: Any,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.BrokenBackend"
    user = make_user(email="ada@example.org")
    sign_in(user, FIREFOX)
    client = sign_in(user, IPHONE)
    assert is_logged_in(client)
    assert "could not e-mail user" in caplog.text and "smtp server down" in caplog.text


# --- What counts as new ---------------------------------------------------------------


def session(user: Any, **fields: Any) -> UserSession:
    """Create a mapping row of `user`."""
    return UserSession.objects.create(
        user=user, session_key=f"k{UserSession.objects.count()}x" * 4, **fields
    )


@pytest.mark.parametrize(
    ("before", "now", "new"),
    [
        # The device column decides where the new row has one.
        (
            {"device": "Firefox 127 on Linux"},
            {"device": "Firefox 127 on Linux", "user_agent": "b"},
            False,
        ),
        ({"device": "Firefox 127 on Linux"}, {"device": "Safari 17 on iOS"}, True),
        # Rows from before devices were recorded: by user agent.
        ({"user_agent": FIREFOX}, {"device": "Firefox 127 on Linux", "user_agent": FIREFOX}, False),
        ({"user_agent": FIREFOX}, {"user_agent": FIREFOX}, False),
        ({"user_agent": FIREFOX}, {"user_agent": IPHONE}, True),
        # The country must match too.
        ({"device": "d", "country": "DE"}, {"device": "d", "country": "DE"}, False),
        ({"device": "d", "country": "DE"}, {"device": "d", "country": "FR"}, True),
    ],
)
def test_a_sign_in_is_new_unless_another_session_had_its_device_and_country(
    make_user: Any, before: dict[str, str], now: dict[str, str], new: bool
) -> None:
    user, other = make_user(), make_user()
    session(user, **before)
    # Another user's identical session proves nothing about this user.
    session(other, **now)
    assert selectors.is_new_sign_in(session(user, **now)) is new


def test_a_users_only_session_is_not_new(make_user: Any) -> None:
    user = make_user()
    assert selectors.is_new_sign_in(session(user, device="d")) is False
