"""No quiet skips in CI: with `CI` set, a test skipped for a missing server or browser fails.

A skip is allowed in CI only when the test does not apply to the leg that runs
(a PostgreSQL-only test on SQLite, a Redis-cache test on the embedded leg, which
has no REDIS_URL by design). Anything else - no redis-server, no chromium, a
server that should be there - is a failure, so a green CI never hides a test that
did not run. Skip reasons are printed either way (`-ra`). Loaded with `-p tests.ci`.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

# Reasons that mean "not this leg", never "something is missing".
LEG_REASONS = ("the database is", "needs REDIS_URL", "Django ")


def _in_ci() -> bool:
    """Return whether this run is CI's (`CI` set to anything but empty/false)."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say which servers this leg runs against, at the top of the output."""
    from django.conf import settings

    if not settings.configured:
        return None
    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    cache = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    broker = str(settings.CELERY_BROKER_URL).split("://", 1)[0]
    ci = "CI: skips for missing servers fail" if _in_ci() else "not CI"
    return f"leg: database={database} cache={cache} broker={broker} ({ci})"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, None]:
    """In CI, turn a skip for anything but "not this leg" into a failure."""
    outcome = yield
    report = outcome.get_result()
    if not (_in_ci() and report.skipped and isinstance(report.longrepr, tuple)):
        return
    reason = str(report.longrepr[2]).removeprefix("Skipped: ")
    if not reason.startswith(LEG_REASONS):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where it must run: {reason}"
