"""Every HTML page carries the Content-Security-Policy; per-user pages are never cached."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from tests.conftest import logged_in_client

pytestmark = pytest.mark.django_db


def test_the_policy_allows_no_inline_code_and_no_other_origin() -> None:
    policy = dict(d.strip().split(" ", 1) for d in settings.CONTENT_SECURITY_POLICY.split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in settings.CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    "url", ["/sessions/", "/revocations/", "/accounts/login/", "/admin/login/", "/api/docs"]
)
def test_html_pages_carry_the_policy(url: str, operator: Any) -> None:
    response = logged_in_client(operator).get(url)
    assert response["Content-Type"].startswith("text/html")
    assert response["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    "url", ["/sessions/", "/revocations/", "/accounts/password_change/", "/admin/"]
)
def test_per_user_pages_are_private_and_never_stored(url: str, operator: Any) -> None:
    operator.is_staff = True
    operator.save()
    response = logged_in_client(operator).get(url)
    assert response.status_code == 200
    directives = {d.strip() for d in response["Cache-Control"].split(",")}
    assert {"private", "no-store"} <= directives


def test_a_public_page_stays_cacheable() -> None:
    response = Client().get("/t/public/")
    assert "Cache-Control" not in response
    assert "Cookie" not in response.get("Vary", "")


def test_json_gets_no_policy_header(client: Client) -> None:
    assert "Content-Security-Policy" not in client.get("/healthz")
