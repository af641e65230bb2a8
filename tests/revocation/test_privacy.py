"""What a session's link records about its client: as much as the privacy settings allow."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from revocation.models import UserSession
from revocation.privacy import truncate_ip
from revocation.selectors import session_list
from tests.revocation.test_devices import CHROME_BRANDS, CHROME_WINDOWS, FIREFOX_WINDOWS

pytestmark = pytest.mark.django_db
WINDOWS_11 = {
    "Sec-CH-UA": CHROME_BRANDS,
    "Sec-CH-UA-Platform": '"Windows"',
    "Sec-CH-UA-Platform-Version": '"19.0.0"',
}
# What Chrome sends unasked: no platform version.
LOW_ENTROPY = {"Sec-CH-UA": CHROME_BRANDS, "Sec-CH-UA-Platform": '"Windows"'}


def sign_in(user: Any, *, ip: str = "203.0.113.77", **hints: str) -> Client:
    """Log Chrome on Windows in as `user` from `ip`, the sign-in carrying `hints`."""
    client = Client(REMOTE_ADDR=ip, headers={"User-Agent": CHROME_WINDOWS})
    assert client.post(f"/t/login/{user.pk}/", headers=hints).status_code == 200
    return client


def row(user: Any) -> tuple[Any, ...]:
    """Return (ip, user_agent, device) of the user's one link."""
    link = UserSession.objects.get(user=user)
    return link.ip, link.user_agent, link.device


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("203.0.113.0", "203.0.113.0"),
        ("2001:db8:1234:5678::9", "2001:db8:1234::"),
        ("::ffff:203.0.113.77", "203.0.113.0"),
    ],
)
def test_a_truncated_ip_keeps_the_network(ip: str, network: str) -> None:
    assert truncate_ip(ip) == network


def test_by_default_the_link_keeps_the_ip_the_user_agent_and_the_device(
    any_engine: str, make_user: Any
) -> None:
    user = make_user()
    sign_in(user, **WINDOWS_11)
    assert row(user) == ("203.0.113.77", CHROME_WINDOWS, "Chrome|Windows|11|")
    assert session_list(user, current_key=None)[0]["device"] == "Chrome on Windows 11"


@pytest.mark.parametrize(
    ("mode", "ip", "kept"),
    [
        ("truncated", "203.0.113.77", "203.0.113.0"),
        ("truncated", "2001:db8:1234:5678::9", "2001:db8:1234::"),
        ("off", "203.0.113.77", None),
    ],
)
def test_record_ip_keeps_the_network_or_nothing(
    any_engine: str, make_user: Any, settings: Any, mode: str, ip: str, kept: str | None
) -> None:
    settings.REVOCATION_RECORD_IP = mode
    settings.REVOCATION_TOUCH_INTERVAL = 0
    user = make_user()
    client = sign_in(user, ip=ip)
    assert UserSession.objects.get(user=user).ip == kept
    # A touch writes the same, never the full address.
    UserSession.objects.filter(user=user).update(ip="192.0.2.1")
    client.get("/t/whoami/")
    assert UserSession.objects.get(user=user).ip == kept


def test_record_user_agent_device_keeps_only_the_description(
    any_engine: str, make_user: Any, settings: Any
) -> None:
    settings.REVOCATION_RECORD_USER_AGENT = "device"
    user = make_user()
    sign_in(user, **WINDOWS_11)
    assert row(user) == ("203.0.113.77", "", "Chrome|Windows|11|")
    [item] = session_list(user, current_key=None)
    assert (item["device"], item["user_agent"]) == ("Chrome on Windows 11", "")


def test_record_user_agent_off_keeps_neither(
    any_engine: str, make_user: Any, settings: Any
) -> None:
    settings.REVOCATION_RECORD_USER_AGENT = "off"
    settings.REVOCATION_TOUCH_INTERVAL = 0
    user = make_user()
    client = sign_in(user, **WINDOWS_11)
    client.get("/t/whoami/")
    assert row(user) == ("203.0.113.77", "", "")
    assert session_list(user, current_key=None)[0]["device"] == "Unknown device"


def test_a_request_without_client_hints_keeps_the_better_description(
    any_engine: str, make_user: Any, settings: Any
) -> None:
    """Only the login page asks for the OS version: later requests may come without it."""
    settings.REVOCATION_TOUCH_INTERVAL = 0
    user = make_user()
    client = sign_in(user, **WINDOWS_11)

    client.get("/t/whoami/", headers=LOW_ENTROPY)
    client.get("/t/whoami/")
    assert row(user)[2] == "Chrome|Windows|11|"

    # Another browser on the cookie: the description follows it.
    client.get("/t/whoami/", headers={"User-Agent": FIREFOX_WINDOWS})
    assert row(user)[1:] == (FIREFOX_WINDOWS, "Firefox|Windows||")


def test_a_request_with_client_hints_updates_the_description(
    any_engine: str, make_user: Any, settings: Any
) -> None:
    settings.REVOCATION_TOUCH_INTERVAL = 0
    user = make_user()
    client = sign_in(user, **{**WINDOWS_11, "Sec-CH-UA-Platform-Version": '"10.0.0"'})
    assert row(user)[2] == "Chrome|Windows|10|"

    # Upgraded to Windows 11 within the session.
    client.get("/t/whoami/", headers=WINDOWS_11)
    assert row(user)[2] == "Chrome|Windows|11|"


def test_a_touch_is_still_one_update(any_engine: str, make_user: Any, settings: Any) -> None:
    settings.REVOCATION_TOUCH_INTERVAL = 0
    user = make_user()
    client = sign_in(user, **WINDOWS_11)
    with CaptureQueriesContext(connection) as captured:
        client.get("/t/whoami/", headers=LOW_ENTROPY)

    writes = [q["sql"] for q in captured if UserSession._meta.db_table in q["sql"]]
    assert len(writes) == 1 and writes[0].startswith("UPDATE"), writes
    assert row(user)[2] == "Chrome|Windows|11|"


def test_a_key_rotation_records_the_client_of_that_request(
    session_engine: str, make_user: Any
) -> None:
    """update_session_auth_hash (a password change) moves the link: with what it says now."""
    user = make_user()
    client = sign_in(user, **{**WINDOWS_11, "Sec-CH-UA-Platform-Version": '"10.0.0"'})
    before = UserSession.objects.get(user=user)

    client.post("/t/rehash/", REMOTE_ADDR="203.0.113.9", headers=WINDOWS_11)

    after = UserSession.objects.get(user=user)
    assert (after.pk, after.created_at) == (before.pk, before.created_at)
    assert after.session_key != before.session_key
    assert (after.ip, after.device) == ("203.0.113.9", "Chrome|Windows|11|")
