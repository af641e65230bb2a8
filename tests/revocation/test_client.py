"""Client IP honours exactly the configured number of trusted proxies."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from revocation.client import client_ip, user_agent


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
