"""End to end in a real browser: a live server, a real Celery worker, Debian's chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from revocation import services
from revocation.models import RevocationRequest, UserSession
from tests.conftest import OPERATOR_PERMS, is_logged_in, logged_in_client
from tests.support import assert_sessions_gone, session_key, wait_until, write_geoip_database

from .conftest import LOCALE, log_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]
State = RevocationRequest.State

LAPTOP = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
# The live server sees every browser at 127.0.0.1, which no GeoIP database places: each
# device says where it is "from" (documentation addresses, RFC 5737) in the header a
# proxy in front would set. Ignored unless REVOCATION_CLIENT_IP_HEADER names it.
IP_HEADER = "X-Real-IP"
LAPTOP_IP = "203.0.113.7"
PHONE_IP = "198.51.100.23"
# The test's own GeoIP City database of those addresses (see `geoip`).
PLACES = {
    "203.0.113.0/24": {
        "country": {"iso_code": "DE", "names": {"en": "Germany"}},
        "city": {"names": {"en": "Berlin"}},
    },
    "198.51.100.0/24": {
        "country": {"iso_code": "FR", "names": {"en": "France"}},
        "city": {"names": {"en": "Paris"}},
    },
}


def shows_login_page(page: Any, url: str) -> bool:
    """Load `url` and return whether the server answered with the login page."""
    page.goto(url)
    return (
        "/accounts/login/" in page.url and page.get_by_role("heading", name="Log in").count() == 1
    )


@pytest.fixture
def two_devices(browser: Any) -> Any:
    """Two separate browser contexts (cookie jars): a laptop and a phone."""
    laptop = browser.new_context(
        user_agent=LAPTOP,
        viewport={"width": 1100, "height": 700},
        locale=LOCALE,
        extra_http_headers={IP_HEADER: LAPTOP_IP},
    )
    # Safari sends no client hints; without these blanks Chromium's own would name it.
    phone = browser.new_context(
        user_agent=PHONE,
        viewport={"width": 1100, "height": 700},
        locale=LOCALE,
        extra_http_headers={
            "Sec-CH-UA": "",
            "Sec-CH-UA-Platform": "",
            "Sec-CH-UA-Mobile": "",
            IP_HEADER: PHONE_IP,
        },
    )
    yield laptop, phone
    laptop.close()
    phone.close()


@pytest.fixture
def geoip(tmp_path: Path, settings: Any) -> Path:
    """Place the devices: a GeoIP City database of PLACES, and their addresses trusted.

    The live server runs in a thread of this process, so it reads these settings too
    (the places module opens the database of the GEOIP_PATH it finds at each lookup).
    """
    write_geoip_database(tmp_path / "GeoLite2-City.mmdb", PLACES)
    settings.GEOIP_PATH = str(tmp_path)
    settings.REVOCATION_CLIENT_IP_HEADER = IP_HEADER
    return tmp_path


def test_log_out_other_sessions_from_the_sessions_page(
    live_server: Any,
    geoip: Path,
    two_devices: Any,
    make_user: Any,
    start_worker: Any,
    wait_done: Any,
    screenshot: Any,
) -> None:
    user = make_user(username="alice")
    start_worker()
    laptop, phone = two_devices
    base = live_server.url
    a = log_in(laptop, base, "alice")
    b = log_in(phone, base, "alice")

    a.reload()
    rows = a.locator("tbody tr")
    expect(rows).to_have_count(2)
    current, other = a.locator("tr.is-current"), rows.filter(has_not=a.locator(".badge"))
    expect(current).to_contain_text("Chromium on Linux")
    expect(current).to_contain_text("This session")
    expect(other).to_contain_text("Safari on iPhone (iOS 17)")
    # Each sign-in is placed from the address its device came "from".
    expect(current.locator(".place")).to_have_text("· Berlin, DE")
    expect(current).to_contain_text(LAPTOP_IP)
    expect(other.locator(".place")).to_have_text("· Paris, FR")
    expect(other).to_contain_text(PHONE_IP)
    answer = a.request.get(f"{base}/api/sessions/")
    assert answer.ok, answer.text()
    found = {(s["device"], s["ip"], s["city"], s["country"]) for s in answer.json()["items"]}
    assert found == {
        ("Chromium on Linux", LAPTOP_IP, "Berlin", "DE"),
        ("Safari on iPhone (iOS 17)", PHONE_IP, "Paris", "FR"),
    }
    screenshot(a, "two-sessions", docs_name="sessions.png")

    a.get_by_role("button", name="Log out other sessions").click()

    expect(a.get_by_role("status")).to_contain_text("Your other sessions are being logged out")
    screenshot(a, "after-log-out-others")
    wait_until(lambda: shows_login_page(b, f"{base}/sessions/"), timeout=60, what="B logged out")
    screenshot(b, "phone-logged-out")
    # A stays in; once the worker is done, only A's session is left.
    wait_done(RevocationRequest.objects.get(user_ids=[user.pk]))
    a.goto(f"{base}/sessions/")
    expect(a.get_by_role("heading", name="Your sessions")).to_be_visible()
    expect(a.locator("tbody tr")).to_have_count(1)
    assert UserSession.objects.filter(user=user).count() == 1


def test_log_out_one_session_with_its_button(
    live_server: Any, two_devices: Any, make_user: Any, screenshot: Any
) -> None:
    make_user(username="carol")
    laptop, phone = two_devices
    base = live_server.url
    a = log_in(laptop, base, "carol")
    b = log_in(phone, base, "carol")
    a.reload()

    a.get_by_role("button", name="Log out Safari on iPhone (iOS 17)").click()

    expect(a.get_by_role("status")).to_contain_text("That session is logged out.")
    expect(a.locator("tbody tr")).to_have_count(1)
    # Synchronous: the very next page load of the other device is the login page.
    assert shows_login_page(b, f"{base}/sessions/")
    screenshot(a, "one-session-logged-out")


def test_password_change_logs_out_the_other_browser(
    live_server: Any,
    two_devices: Any,
    make_user: Any,
    start_worker: Any,
    screenshot: Any,
) -> None:
    make_user(username="bob")
    start_worker()
    laptop, phone = two_devices
    base = live_server.url
    a = log_in(laptop, base, "bob")
    b = log_in(phone, base, "bob")

    a.get_by_role("link", name="Change password").click()
    expect(a.get_by_text("logs out all your other sessions")).to_be_visible()
    a.get_by_label("Old password").fill("pw-secret-1")
    a.get_by_label("New password:", exact=True).fill("a-much-longer-passphrase-42")
    a.get_by_label("New password confirmation").fill("a-much-longer-passphrase-42")
    a.get_by_role("button", name="Change password").click()

    expect(a.get_by_role("heading", name="Password changed")).to_be_visible()
    screenshot(a, "password-changed")
    wait_until(lambda: shows_login_page(b, f"{base}/sessions/"), timeout=60, what="B logged out")
    a.goto(f"{base}/sessions/")
    expect(a.get_by_role("heading", name="Your sessions")).to_be_visible()


def test_staff_revoke_a_group_from_the_dashboard_and_watch_it_finish(
    live_server: Any,
    browser: Any,
    make_user: Any,
    start_worker: Any,
    wait_done: Any,
    screenshot: Any,
) -> None:
    make_user(username="ops", perms=OPERATOR_PERMS)
    contractors = Group.objects.create(name="contractors")
    members = [make_user(username=f"contractor{i}") for i in range(3)]
    contractors.user_set.add(*members)
    member_clients = [logged_in_client(m) for m in members]
    outsider = logged_in_client(make_user(username="dave"))
    start_worker()
    # Some history for the dashboard to show.
    wait_done(services.revoke_user_sessions(make_user(username="erin"), reason="lost laptop"))
    context = browser.new_context(
        user_agent=LAPTOP, viewport={"width": 1200, "height": 800}, locale=LOCALE
    )
    page = log_in(context, live_server.url, "ops")

    page.get_by_role("link", name="Revocation dashboard").first.click()
    expect(page.get_by_role("heading", name="Revocation dashboard")).to_be_visible()
    page.get_by_label("A group", exact=True).check()
    page.locator("#id_group").fill("contractors")
    page.locator("#id_reason").fill("contract ended")
    page.get_by_role("button", name="Start revocation").click()

    request = RevocationRequest.objects.get(group_name="contractors")
    expect(page.get_by_role("status")).to_contain_text(f"Revocation #{request.pk} started")
    row = page.locator(f'tr[data-revocation-id="{request.pk}"]')
    expect(row).to_contain_text("group contractors")
    expect(row).to_contain_text("contract ended")
    expect(row).to_contain_text("ops")
    # No reload: the page polls the API and updates the row until the worker is done.
    expect(row.locator('[data-field="state"]')).to_have_text("done", timeout=90_000)
    expect(row.locator('[data-field="users"]')).to_have_text("3/3")
    expect(row.locator('[data-field="sessions"]')).to_have_text("3")
    screenshot(page, "group-revocation-done", docs_name="revocations.png")

    assert wait_done(request).state == State.DONE
    assert_sessions_gone(session_key(c) for c in member_clients)
    assert not any(is_logged_in(c) for c in member_clients)
    assert is_logged_in(outsider)
    context.close()


def test_everyone_asks_for_confirmation_in_the_browser(
    live_server: Any, browser: Any, make_user: Any, screenshot: Any
) -> None:
    make_user(username="ops", perms=OPERATOR_PERMS)
    context = browser.new_context(locale=LOCALE)
    page = log_in(context, live_server.url, "ops")
    page.goto(f"{live_server.url}/revocations/")

    page.get_by_label("Everyone", exact=True).check()
    page.locator("#id_reason").fill("breach")
    page.get_by_role("button", name="Start revocation").click()

    expect(page.get_by_role("heading", name="Log out everyone?")).to_be_visible()
    screenshot(page, "confirm-everyone")
    assert not RevocationRequest.objects.exists()
    page.get_by_role("button", name="Yes, log out everyone").click()
    wait_until(lambda: RevocationRequest.objects.filter(target="everyone").exists(), timeout=30)
    context.close()


def test_no_page_breaks_the_content_security_policy(
    live_server: Any, browser: Any, make_user: Any
) -> None:
    """Every page's scripts and styles load under the policy (chromium reports each refusal)."""
    make_user(username="root", is_staff=True, is_superuser=True)
    context = browser.new_context(locale=LOCALE)
    page = log_in(context, live_server.url, "root")
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)

    for url in ("/sessions/", "/revocations/", "/admin/", "/admin/auth/user/", "/api/docs"):
        page.goto(f"{live_server.url}{url}", wait_until="networkidle")
    expect(page.locator(".swagger-ui")).to_be_visible()  # the API docs rendered

    assert refused == []
    context.close()
