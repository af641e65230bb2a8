"""GeoIP, optional: with GEOIP_PATH the link records country and city; without, nothing fails.

The databases are written by the test (mmdb-writer), never downloaded.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from revocation import places
from revocation.models import UserSession
from revocation.selectors import session_list
from tests.revocation.test_devices import FIREFOX_WINDOWS
from tests.support import write_geoip_database

pytestmark = pytest.mark.django_db

BERLIN = {
    "country": {"iso_code": "DE", "names": {"en": "Germany"}},
    "city": {"names": {"en": "Berlin"}},
}
HAMBURG = {"country": {"iso_code": "DE"}, "city": {"names": {"en": "Hamburg"}}}
PARIS = {"country": {"iso_code": "FR"}, "city": {"names": {"en": "Paris"}}}
NETWORKS = {
    "203.0.113.0/25": BERLIN,
    "203.0.113.128/25": HAMBURG,
    "2001:db8:1234::/48": PARIS,
}


@pytest.fixture
def geoip(tmp_path: Path, settings: Any) -> Path:
    """A GEOIP_PATH folder holding a GeoLite2-City database."""
    write_geoip_database(tmp_path / "GeoLite2-City.mmdb", NETWORKS)
    settings.GEOIP_PATH = str(tmp_path)
    return tmp_path


def sign_in(user: Any, ip: str) -> Client:
    """Log `user` in from `ip`; return the client."""
    client = Client(REMOTE_ADDR=ip, headers={"User-Agent": FIREFOX_WINDOWS})
    assert client.post(f"/t/login/{user.pk}/").status_code == 200
    return client


def place(user: Any) -> tuple[str, str]:
    """Return (country, city) of the user's one link."""
    link = UserSession.objects.get(user=user)
    return link.country, link.city


def test_a_sign_in_records_where_its_ip_is(any_engine: str, make_user: Any, geoip: Path) -> None:
    user = make_user()
    sign_in(user, "203.0.113.7")

    assert place(user) == ("DE", "Berlin")
    [item] = session_list(user, current_key=None)
    assert (item["country"], item["city"], item["place"]) == ("DE", "Berlin", "Berlin, DE")


def test_the_sessions_page_and_the_api_show_the_place(make_user: Any, geoip: Path) -> None:
    user = make_user()
    client = sign_in(user, "2001:db8:1234:1::5")

    page = client.get("/sessions/").content.decode()
    assert "Firefox on Windows" in page and "· Paris, FR" in page
    [item] = client.get("/api/sessions/").json()["items"]
    assert (item["device"], item["country"], item["city"]) == ("Firefox on Windows", "FR", "Paris")


def test_a_touch_records_the_place_of_the_new_ip(
    any_engine: str, make_user: Any, geoip: Path, settings: Any
) -> None:
    settings.REVOCATION_TOUCH_INTERVAL = 0
    user = make_user()
    client = sign_in(user, "203.0.113.7")
    client.get("/t/whoami/", REMOTE_ADDR="203.0.113.200")
    assert place(user) == ("DE", "Hamburg")
    # An address the database does not know: no place, rather than the old one.
    client.get("/t/whoami/", REMOTE_ADDR="198.51.100.1")
    assert place(user) == ("", "")


@pytest.mark.parametrize(("mode", "expected"), [("truncated", ("DE", "Berlin")), ("off", ("", ""))])
def test_the_place_follows_record_ip(
    any_engine: str, make_user: Any, geoip: Path, settings: Any, mode: str, expected: Any
) -> None:
    """Truncated: the place of the network address (203.0.113.0 is Berlin, .200 Hamburg)."""
    settings.REVOCATION_RECORD_IP = mode
    user = make_user()
    sign_in(user, "203.0.113.200")
    assert place(user) == expected


def test_a_country_database_records_the_country(
    make_user: Any, tmp_path: Path, settings: Any
) -> None:
    settings.GEOIP_PATH = str(
        write_geoip_database(tmp_path / "GeoLite2-Country.mmdb", NETWORKS, "GeoLite2-Country")
    )
    user = make_user()
    sign_in(user, "203.0.113.7")
    assert place(user) == ("DE", "")
    assert session_list(user, current_key=None)[0]["place"] == "DE"


def test_a_database_replaced_on_disk_is_read_again(make_user: Any, geoip: Path) -> None:
    """A monthly GeoLite2 update, without restarting the web processes."""
    first, second = make_user(), make_user()
    sign_in(first, "203.0.113.7")
    write_geoip_database(geoip / "GeoLite2-City.mmdb", {"203.0.113.0/24": PARIS})
    sign_in(second, "203.0.113.7")
    assert (place(first), place(second)) == (("DE", "Berlin"), ("FR", "Paris"))


def test_a_private_address_has_no_place_and_logs_nothing(
    make_user: Any, geoip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    user = make_user()
    with caplog.at_level(logging.WARNING, logger="revocation"):
        sign_in(user, "127.0.0.1")
    assert place(user) == ("", "")
    assert not caplog.records


@pytest.mark.parametrize("problem", ["missing", "corrupt"])
def test_a_database_that_cannot_be_read_logs_once_and_records_no_place(
    any_engine: str,
    make_user: Any,
    tmp_path: Path,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    problem: str,
) -> None:
    pytest.importorskip("geoip2", reason="needs geoip2 (dev dependency)")
    if problem == "corrupt":
        (tmp_path / "GeoLite2-City.mmdb").write_bytes(b"not a MaxMind database " * 100)
        settings.GEOIP_PATH = str(tmp_path)
    else:
        settings.GEOIP_PATH = str(tmp_path / "nowhere")
    first, second = make_user(), make_user()

    with caplog.at_level(logging.WARNING, logger="revocation"):
        sign_in(first, "203.0.113.7")
        sign_in(second, "203.0.113.8")

    assert place(first) == place(second) == ("", "")
    assert [r.name for r in caplog.records] == ["revocation"]
    assert "GeoIP database" in caplog.records[0].getMessage()


def test_without_the_geoip2_package_nothing_changes(
    any_engine: str,
    make_user: Any,
    tmp_path: Path,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # As on an install without geoip2: importing it fails.
    for name in ("geoip2", "geoip2.errors", "geoip2.database", "django.contrib.gis.geoip2"):
        monkeypatch.setitem(sys.modules, name, None)
    settings.GEOIP_PATH = str(tmp_path)
    user = make_user()

    with caplog.at_level(logging.WARNING, logger="revocation"):
        sign_in(user, "203.0.113.7")

    link = UserSession.objects.get(user=user)
    assert (link.ip, link.country, link.city) == ("203.0.113.7", "", "")
    assert "geoip2 package is not installed" in caplog.text
    assert places.status() == "the geoip2 package is not installed"


def test_without_geoip_path_no_place_is_looked_up(make_user: Any, settings: Any) -> None:
    assert not hasattr(settings, "GEOIP_PATH")
    user = make_user()
    sign_in(user, "203.0.113.7")
    assert place(user) == ("", "")
    assert places.status() == ""
