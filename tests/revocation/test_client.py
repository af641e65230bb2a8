"""Client IP honours exactly the configured proxies or header; client hints are read."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, RequestFactory

from revocation.client import client_hints, client_ip, user_agent
from revocation.devices import Hints


@pytest.mark.parametrize(
    ("proxies", "xff", "expected"),
    [
        (0, "", "198.51.100.7"),
        (0, "203.0.113.5", "198.51.100.7"),  # no proxy: the header is client-controlled
        (1, "203.0.113.5", "203.0.113.5"),
        (1, "6.6.6.6, 203.0.113.5", "203.0.113.5"),  # spoofed left entry ignored
        (2, "6.6.6.6, 203.0.113.5, 10.0.0.2", "203.0.113.5"),
        (2, "203.0.113.5", "198.51.100.7"),  # fewer hops than proxies: header untrusted
        (1, "not-an-ip", "198.51.100.7"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_ip_trusts_only_configured_proxies(
    rf: RequestFactory, settings: Any, proxies: int, xff: str, expected: str
) -> None:
    settings.REVOCATION_TRUSTED_PROXY_COUNT = proxies
    request = rf.get("/", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR=xff)
    assert client_ip(request) == expected


def test_user_agent_is_truncated(rf: RequestFactory) -> None:
    assert len(user_agent(rf.get("/", HTTP_USER_AGENT="x" * 2000))) == 512


@pytest.mark.parametrize(
    ("header", "meta", "expected"),
    [
        ("CF-Connecting-IP", {"HTTP_CF_CONNECTING_IP": "203.0.113.5"}, "203.0.113.5"),
        ("X-Real-IP", {"HTTP_X_REAL_IP": " 2001:db8::7 "}, "2001:db8::7"),
        # Not an address (or missing): the request did not come through the proxy.
        ("X-Real-IP", {"HTTP_X_REAL_IP": "203.0.113.5, 6.6.6.6"}, "198.51.100.7"),
        ("X-Real-IP", {"HTTP_X_REAL_IP": "unknown"}, "198.51.100.7"),
        ("X-Real-IP", {}, "198.51.100.7"),
        # The header is the one source: X-Forwarded-For is not read.
        ("X-Real-IP", {"HTTP_X_FORWARDED_FOR": "6.6.6.6"}, "198.51.100.7"),
    ],
)
def test_client_ip_comes_from_the_configured_header(
    rf: RequestFactory, settings: Any, header: str, meta: dict[str, Any], expected: str
) -> None:
    settings.REVOCATION_CLIENT_IP_HEADER = header
    settings.REVOCATION_TRUSTED_PROXY_COUNT = 1
    assert client_ip(rf.get("/", REMOTE_ADDR="198.51.100.7", **meta)) == expected


def test_without_the_header_setting_a_client_cannot_choose_its_ip(
    rf: RequestFactory, settings: Any
) -> None:
    request = rf.get("/", REMOTE_ADDR="198.51.100.7", HTTP_CF_CONNECTING_IP="6.6.6.6")
    assert client_ip(request) == "198.51.100.7"


def test_client_hints_are_read_from_the_request(rf: RequestFactory) -> None:
    request = rf.get(
        "/",
        headers={
            "Sec-CH-UA": '"Chromium";v="142", "Google Chrome";v="142"',
            "Sec-CH-UA-Platform": '"Windows"',
            "Sec-CH-UA-Platform-Version": '"19.0.0"',
            "Sec-CH-UA-Model": '""',
        },
    )
    assert client_hints(request) == Hints(
        brands='"Chromium";v="142", "Google Chrome";v="142"',
        model='""',
        platform='"Windows"',
        platform_version='"19.0.0"',
    )
    assert client_hints(rf.get("/")) == Hints()


@pytest.mark.django_db
def test_the_login_page_asks_for_the_client_hints_that_name_the_device(
    client: Client,
) -> None:
    response = client.get("/accounts/login/")

    assert response.status_code == 200
    asked = {h.strip() for h in response.headers["Accept-CH"].split(",")}
    assert {"Sec-CH-UA-Platform-Version", "Sec-CH-UA-Model"} <= asked
