"""Property-based: generated requests never cause a 5xx; every answer matches the OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, strategies
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from revocation import services
from tests.conftest import csrf_client, logged_in_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_rate_limit")]

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@contextmanager
def wsgi_app() -> Iterator[Any]:
    """The real WSGI application, kept on this test's database transaction.

    As Django's test client does, stop each request from closing the connection,
    which would end the transaction the test runs in. (The test client connects the
    receiver again after each of its requests, so use it before entering.)
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_api_answers_match_the_schema_and_never_fail(make_user: Any, operator: Any) -> None:
    staff = operator
    Group.objects.create(name="incident")
    logged_in_client(staff)  # a second session, so there is another one to end
    services.revoke_user_sessions(make_user(), reason="seed")
    client, token = csrf_client(staff)
    # The CSRF cookie does not depend on the session, so it outlives re-logins.
    cookies = {"sessionid": client.cookies["sessionid"].value, "csrftoken": token}
    headers = {"X-CSRFToken": token}
    store = import_module(settings.SESSION_ENGINE).SessionStore
    seen: set[tuple[str, int]] = set()

    def stay_logged_in() -> None:
        """Log in again if a generated request ended our session (DELETE, revoke-all)."""
        if not store().exists(cookies["sessionid"]):
            fresh = Client()
            fresh.force_login(staff)  # no request: the connection receivers stay off
            cookies["sessionid"] = fresh.cookies["sessionid"].value

    with wsgi_app() as app:
        schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)

        @given(
            case=strategies.one_of(
                schema.as_strategy(generation_mode=GenerationMode.POSITIVE),
                schema.as_strategy(generation_mode=GenerationMode.NEGATIVE),
            )
        )
        @hypothesis.settings(
            max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: Any) -> None:
            stay_logged_in()
            response = case.call(headers=headers, cookies=cookies)
            seen.add((case.method, response.status_code))
            case.validate_response(response, checks=CHECKS)

        check()

    # Not vacuous: authenticated calls got through to every kind of operation.
    assert {("GET", 200), ("POST", 202), ("POST", 422)} <= seen
