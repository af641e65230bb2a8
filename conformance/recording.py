"""A DiscoverRunner that also writes every failing test id, with its traceback, to JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.apps import apps
from django.test import override_settings
from django.test.runner import DiscoverRunner

RESULT_ENV = "CONFORMANCE_RESULT"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


def handler_middleware() -> list[str]:
    """Return the MIDDLEWARE a request handler builds its chain from, under a test override."""
    from django.core.handlers import base

    with override_settings(MIDDLEWARE=[AUTH_MIDDLEWARE]):
        return list(base.settings.MIDDLEWARE)  # type: ignore[attr-defined]


class RecordingRunner(DiscoverRunner):
    """Record the run in the file named by $CONFORMANCE_RESULT."""

    def suite_result(self, suite: Any, result: Any, **kwargs: Any) -> int:
        """Write tests run, failing tests and what was installed; return Django's count."""
        failing: dict[str, str] = {}
        for kind, entries in (("FAIL", result.failures), ("ERROR", result.errors)):
            for test, trace in entries:
                failing[test.id()] = f"{kind}\n{trace}"
        for test in result.unexpectedSuccesses:
            failing[test.id()] = "UNEXPECTED SUCCESS\n"
        record = {
            "tests_run": result.testsRun,
            "skipped": len(result.skipped),
            "failing": failing,
            # Proof that the run tested what it claims: the orchestrator checks both.
            "installed_apps": [config.name for config in apps.get_app_configs()],
            "handler_middleware": handler_middleware(),
        }
        Path(os.environ[RESULT_ENV]).write_text(json.dumps(record, indent=1, sort_keys=True))
        return int(super().suite_result(suite, result, **kwargs))
