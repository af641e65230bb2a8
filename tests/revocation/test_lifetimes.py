"""The idle timeout and the absolute lifetime end sessions on every engine, on the stamps' clock."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from revocation import lifetimes, linking, services, stamps
from revocation.models import UserSession
from tests.conftest import ALL_ENGINES, ENGINES, is_logged_in

pytestmark = pytest.mark.django_db
IDLE = 600
LIFETIME = 3600


class Clock:
    """The stamps' clock, moved by the test (whole seconds: sums stay exact)."""

    def __init__(self) -> None:
        self.start = self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def at(self, seconds: float) -> None:
        """Move to `seconds` after the start."""
        self.now = self.start + seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Return the clock of the stamps (linking.clock), under the test's control."""
    clock = Clock()
    monkeypatch.setattr(linking, "clock", clock)
    return clock


def sign_in(user: Any) -> Client:
    """Return a client that signed in as `user` through login(), at the clock's time."""
    client = Client()
    assert client.post(f"/t/login/{user.pk}/").status_code == 200
    return client


def in_at(clock: Clock, seconds: float, client: Client) -> bool:
    """Move the clock to `seconds` after its start; return whether `client` is logged in."""
    clock.at(seconds)
    return is_logged_in(client)


def test_an_idle_session_is_logged_out_at_the_timeout(
    any_engine: str, make_user: Any, settings: Any, clock: Clock
) -> None:
    settings.REVOCATION_IDLE_TIMEOUT = IDLE
    user = make_user()
    almost, idle = sign_in(user), sign_in(user)
    assert in_at(clock, IDLE - 1, almost)
    assert not in_at(clock, IDLE, idle)
    # Idle since the first request only: the second one stamped activity.
    assert in_at(clock, 2 * IDLE - 2, almost)


def test_an_idle_session_is_flushed_like_a_fenced_one(
    any_engine: str, make_user: Any, settings: Any, clock: Clock, caplog: Any
) -> None:
    settings.REVOCATION_IDLE_TIMEOUT = IDLE
    user = make_user()
    client = sign_in(user)
    key = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    clock.now += IDLE
    caplog.set_level("INFO", logger="revocation")

    response = client.get("/api/sessions/")

    assert response.status_code == 401
    assert response.json() == {"detail": "not logged in"}
    assert f"revocation: expired session of user {user.pk} logged out" in caplog.messages
    # Flushed: gone from the store, with its mapping, as after a logout.
    assert not UserSession.objects.filter(session_key=key).exists()
    if any_engine != "signed_cookies":
        assert not import_module(ALL_ENGINES[any_engine]).SessionStore().exists(key)
    # A page behind login_required sends it to the login page.
    assert client.get("/sessions/")["Location"].startswith("/accounts/login/")


@pytest.mark.django_db(transaction=True)  # the fence reaches the cache on commit
def test_a_fenced_session_goes_the_same_way(make_user: Any, caplog: Any) -> None:
    user = make_user()
    client = sign_in(user)
    services.revoke_user_sessions(user)
    caplog.set_level("INFO", logger="revocation")
    assert client.get("/api/sessions/").status_code == 401
    assert f"revocation: fenced session of user {user.pk} logged out" in caplog.messages


def test_an_active_session_is_kept_past_the_timeout(
    any_engine: str, make_user: Any, settings: Any, clock: Clock
) -> None:
    settings.REVOCATION_IDLE_TIMEOUT = IDLE
    settings.REVOCATION_TOUCH_INTERVAL = 300
    client = sign_in(make_user())
    # Requests less than IDLE - the touch interval apart keep it, however long.
    gap = IDLE - 300 - 1
    assert all(in_at(clock, n * gap, client) for n in range(1, 12))
    # Every engine's session is linked, a signed cookie's by its sign-in id.
    assert UserSession.objects.exists()


@pytest.mark.parametrize(
    ("touch", "idle", "interval"), [(300, 0, 300), (300, 1000, 300), (300, 121, 60), (0, 600, 0)]
)
def test_activity_is_stamped_every_touch_interval_at_most_half_the_timeout(
    touch: int, idle: int, interval: int
) -> None:
    assert lifetimes.activity_interval(touch_interval=touch, idle_timeout=idle) == interval


def test_a_short_timeout_stamps_activity_more_often_than_the_touch_interval(
    any_engine: str, make_user: Any, settings: Any, clock: Clock
) -> None:
    settings.REVOCATION_TOUCH_INTERVAL = 300
    settings.REVOCATION_IDLE_TIMEOUT = 120
    client = sign_in(make_user())
    # Stamped every 60 s (half the timeout), not every 300 s: by every other request
    # here, the last time at 10 x 59 s.
    assert all(in_at(clock, n * 59, client) for n in range(1, 12))
    assert not in_at(clock, 10 * 59 + 120, client)


def test_the_lifetime_ends_even_an_active_session(
    any_engine: str, make_user: Any, settings: Any, clock: Clock
) -> None:
    settings.REVOCATION_MAX_LIFETIME = LIFETIME
    settings.REVOCATION_TOUCH_INTERVAL = 0  # every request is activity, stamped
    client = sign_in(make_user())
    assert all(in_at(clock, seconds, client) for seconds in range(0, LIFETIME, 100))
    assert in_at(clock, LIFETIME - 1, client)
    assert not in_at(clock, LIFETIME, client)


@pytest.mark.django_db(transaction=True)
def test_the_lifetime_counts_from_the_sign_in_not_from_a_kept_revocation(
    any_engine: str, make_user: Any, settings: Any, clock: Clock
) -> None:
    """Log out my other sessions re-stamps the kept one's fence time, not its sign-in."""
    settings.REVOCATION_MAX_LIFETIME = LIFETIME
    clock.start = clock.now = clock.now - 10 * LIFETIME  # signed in long before the fence
    user = make_user()
    here = sign_in(user)
    assert here.post("/t/revoke-others/").status_code == 200
    assert stamps.signed_in_at(here.session) > clock.start + LIFETIME
    assert in_at(clock, LIFETIME - 1, here)
    assert not in_at(clock, LIFETIME, here)


def test_a_session_stamped_before_login_at_existed_counts_from_its_fence_stamp(
    make_user: Any, settings: Any, clock: Clock
) -> None:
    settings.REVOCATION_MAX_LIFETIME = LIFETIME
    client = sign_in(make_user())
    session = client.session
    del session[stamps.LOGIN_AT]
    session[stamps.AUTH_AT] = clock.start + 100
    session.save()
    assert in_at(clock, LIFETIME + 99, client)
    assert not in_at(clock, LIFETIME + 100, client)


def test_a_session_without_stamps_is_ended_once_a_limit_is_on(
    make_user: Any, settings: Any, clock: Clock
) -> None:
    """Signed in before the app was installed: its age is unknown, so it counts as old."""
    client = sign_in(make_user())
    session = client.session
    for stamp in (stamps.AUTH_AT, stamps.LOGIN_AT, stamps.SEEN_AT):
        del session[stamp]
    session.save()
    assert is_logged_in(client)
    settings.REVOCATION_MAX_LIFETIME = 10 * 365 * 86400
    assert not is_logged_in(client)


def test_limits_are_off_by_default(any_engine: str, make_user: Any, clock: Clock) -> None:
    client = sign_in(make_user())
    assert in_at(clock, 10 * 365 * 86400, client)


def test_a_signed_cookie_gets_a_new_cookie_once_per_touch_interval_only(
    make_user: Any, settings: Any, clock: Clock
) -> None:
    """The activity stamp of a signed cookie is a new cookie: not on every request."""
    settings.SESSION_ENGINE = ALL_ENGINES["signed_cookies"]
    settings.REVOCATION_TOUCH_INTERVAL = 300
    client = sign_in(make_user())
    clock.now += 299
    assert django_settings.SESSION_COOKIE_NAME not in client.get("/t/whoami/").cookies
    clock.now += 2
    assert django_settings.SESSION_COOKIE_NAME in client.get("/t/whoami/").cookies
    assert django_settings.SESSION_COOKIE_NAME not in client.get("/t/whoami/").cookies


def test_an_anonymous_session_keeps_its_data(any_engine: str, settings: Any, clock: Clock) -> None:
    settings.REVOCATION_IDLE_TIMEOUT = IDLE
    settings.REVOCATION_MAX_LIFETIME = LIFETIME
    client = Client()
    client.get("/t/anon/")
    clock.now += 10 * LIFETIME
    client.get("/t/whoami/")
    assert client.session.get("visited") is True


# --- When a session ends: the sessions page and the API ---------------------------------


def expires(item: dict[str, Any]) -> datetime | None:
    """Return the `expires_at` of an API session item as a datetime."""
    value = item["expires_at"]
    return None if value is None else datetime.fromisoformat(value)


def close(a: datetime | None, b: datetime) -> bool:
    """Return whether `a` is `b` to the millisecond (epoch floats lose the last microsecond)."""
    return a is not None and abs(a - b) < timedelta(milliseconds=1)


def api_items(client: Client) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the current session's item and the others' from GET /api/sessions/."""
    items = client.get("/api/sessions/").json()["items"]
    [current] = [item for item in items if item["current"]]
    return current, [item for item in items if not item["current"]]


@pytest.mark.parametrize("engine", list(ENGINES))
def test_the_api_says_when_each_session_ends(
    engine: str, make_user: Any, settings: Any, clock: Clock
) -> None:
    settings.SESSION_ENGINE = ENGINES[engine]
    settings.REVOCATION_IDLE_TIMEOUT = IDLE
    settings.REVOCATION_MAX_LIFETIME = LIFETIME
    user = make_user()
    here, elsewhere = sign_in(user), sign_in(user)

    # Not stamped by this request (100 s < the touch interval): idle from the sign-in.
    clock.at(100)
    current, [other] = api_items(here)
    assert close(expires(current), lifetimes.to_datetime(clock.start + IDLE))
    # The other session's, from its row: an upper bound, the idle timeout first here.
    row = UserSession.objects.get(session_key=elsewhere.session.session_key)
    assert close(expires(other), row.last_seen_at + timedelta(seconds=IDLE))

    # Stamped by this request (the touch interval is up): idle from now.
    clock.at(300)
    current, _ = api_items(here)
    assert close(expires(current), lifetimes.to_datetime(clock.start + 300 + IDLE))

    # Near the end of its lifetime, the lifetime comes first.
    for seconds in range(700, LIFETIME - 100, 500):
        assert in_at(clock, seconds, here)
    clock.at(LIFETIME - 100)
    current, _ = api_items(here)
    assert close(expires(current), lifetimes.to_datetime(clock.start + LIFETIME))
    settings.REVOCATION_IDLE_TIMEOUT = 0
    _, [other] = api_items(here)
    assert close(expires(other), row.created_at + timedelta(seconds=LIFETIME))


@pytest.mark.parametrize("engine", list(ENGINES))
def test_the_api_counts_this_request_once_half_the_idle_timeout_is_up(
    engine: str, make_user: Any, settings: Any, clock: Clock
) -> None:
    settings.SESSION_ENGINE = ENGINES[engine]
    # Half of it (200 s) is under the touch interval (300 s): activity every 200 s.
    settings.REVOCATION_IDLE_TIMEOUT = 400
    here = sign_in(make_user())

    clock.at(250)
    current, _ = api_items(here)

    assert close(expires(current), lifetimes.to_datetime(clock.start + 250 + 400))


def fixed_expiry(client: Client, when: datetime) -> None:
    """Give the client's session an expiry of its own (as "remember me" would)."""
    session = client.session
    session.set_expiry(when)
    session.save()


def test_without_limits_the_api_gives_the_current_sessions_own_expiry_only(
    make_user: Any,
) -> None:
    user = make_user()
    here, _ = sign_in(user), sign_in(user)
    own = (datetime.now().astimezone() + timedelta(days=3)).replace(microsecond=0)
    fixed_expiry(here, own)
    current, [other] = api_items(here)
    assert expires(current) == own
    assert other["expires_at"] is None


def test_the_current_session_ends_at_its_own_expiry_when_that_comes_first(
    make_user: Any, settings: Any, clock: Clock
) -> None:
    settings.REVOCATION_IDLE_TIMEOUT = IDLE
    here = sign_in(make_user())
    own = lifetimes.to_datetime(clock.start + IDLE - 1)
    fixed_expiry(here, own)
    current, _ = api_items(here)
    assert expires(current) == own


def test_the_sessions_page_says_when_each_session_ends(
    make_user: Any, settings: Any, clock: Clock
) -> None:
    settings.REVOCATION_IDLE_TIMEOUT = IDLE
    settings.REVOCATION_MAX_LIFETIME = LIFETIME
    user = make_user()
    here, elsewhere = sign_in(user), sign_in(user)
    row = UserSession.objects.get(session_key=elsewhere.session.session_key)

    page = here.get("/sessions/").content.decode()

    assert "A session is logged out after 10\xa0minutes without activity." in page
    assert "Every session is logged out 1\xa0hour after signing in, however active it is." in page
    [ends_here] = times_in(page, "This session")
    assert close(ends_here, lifetimes.to_datetime(clock.start + IDLE))
    [ends_there] = times_in(page, "at the latest")
    assert close(ends_there, row.last_seen_at + timedelta(seconds=IDLE))


def times_in(page: str, marker: str) -> list[datetime]:
    """Return the expiry times of the table rows of `page` that contain `marker`."""
    rows = re.findall(r"<tr[ >].*?</tr>", page, flags=re.S)
    cells = [re.search(r'class="expires">(.*?)</td>', row, flags=re.S) for row in rows]
    return [
        datetime.fromisoformat(re.findall(r'<time datetime="([^"]+)"', cell[1])[0])
        for row, cell in zip(rows, cells, strict=True)
        if cell and marker in row
    ]


def test_the_sessions_page_without_limits_says_nothing_of_them(make_user: Any) -> None:
    user = make_user()
    here, _ = sign_in(user), sign_in(user)
    page = here.get("/sessions/").content.decode()
    assert "logged out after" not in page and "at the latest" not in page
    assert "Expires" in page


def test_expiry_times_follow_use_tz(make_user: Any, settings: Any, clock: Clock) -> None:
    settings.USE_TZ = False
    settings.REVOCATION_IDLE_TIMEOUT = IDLE
    user = make_user()
    here, _ = sign_in(user), sign_in(user)
    current, [other] = api_items(here)
    assert expires(current) == datetime.fromtimestamp(
        clock.start + IDLE, tz=UTC
    ).astimezone().replace(tzinfo=None)
    assert expires(other) is not None and expires(other).tzinfo is None  # type: ignore[union-attr]
    assert here.get("/sessions/").status_code == 200
