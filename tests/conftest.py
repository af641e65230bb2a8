"""Shared fixtures: users, session engines, and the test URLconf."""

from __future__ import annotations

import io
import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import translation

ENGINES = {
    "db": "django.contrib.sessions.backends.db",
    "cached_db": "django.contrib.sessions.backends.cached_db",
    "cache": "django.contrib.sessions.backends.cache",
}
ALL_ENGINES = {**ENGINES, "signed_cookies": "django.contrib.sessions.backends.signed_cookies"}
_counter = itertools.count()
ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Compile the message catalogues that are missing or stale, as `make messages` does.

    The .mo files are build output, not in git: a bare `pytest` on a fresh clone
    would otherwise render every page in English whatever the language.
    """
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in sorted(ROOT.glob("*/locale/*/LC_MESSAGES/django.po")):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as source:
                catalog = read_po(source)
            with mo.open("wb") as target:
                write_mo(target, catalog)


@pytest.fixture(autouse=True)
def _isolated(settings: Any) -> Iterator[None]:
    """Test URLs, and a cache namespace of this test's own (the shared cache outlives tests).

    Afterwards, the default language again: LocaleMiddleware leaves the language of a
    test's last request active on the thread, which would carry it into the next test.
    """
    settings.ROOT_URLCONF = "tests.urls"
    prefix = f"t{next(_counter)}-{uuid.uuid4().hex[:8]}"
    settings.CACHES = {
        alias: {**config, "KEY_PREFIX": prefix} for alias, config in settings.CACHES.items()
    }
    yield
    translation.deactivate()


@pytest.fixture(params=list(ENGINES))
def session_engine(request: pytest.FixtureRequest, settings: Any) -> str:
    """Run the test once per server-side session engine."""
    settings.SESSION_ENGINE = ENGINES[request.param]
    return str(request.param)


@pytest.fixture(params=list(ALL_ENGINES))
def any_engine(request: pytest.FixtureRequest, settings: Any) -> str:
    """Run the test once per session engine, signed cookies included."""
    settings.SESSION_ENGINE = ALL_ENGINES[request.param]
    return str(request.param)


@pytest.fixture
def make_user(db: Any) -> Any:
    """Return a factory of users with unique names."""
    from django.contrib.auth import get_user_model

    def make(*, perms: tuple[str, ...] = (), **fields: Any) -> Any:
        """Create a user; `perms` are codenames of the revocation app's permissions."""
        from django.contrib.auth.models import Permission

        n = next(_counter)
        fields.setdefault("username", f"user{n}")
        user = get_user_model().objects.create_user(password="pw-secret-1", **fields)
        if perms:
            user.user_permissions.add(
                *Permission.objects.filter(content_type__app_label="revocation", codename__in=perms)
            )
        return user

    return make


@pytest.fixture
def start_worker(transactional_db: Any, tmp_path: Any) -> Any:
    """Return a function that starts a real Celery worker subprocess (stopped at teardown)."""
    from tests.support import Worker, purge_run_queue

    # Before the test body publishes anything, so a worker test counts only its own tasks.
    purge_run_queue()
    workers: list[Worker] = []

    def start(*, beat: bool = False, concurrency: int = 1, **env: str) -> Worker:
        log = tmp_path / f"worker-{len(workers)}.log"
        worker = Worker(log, beat=beat, concurrency=concurrency, **env).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        # A kill is enough: acks_late brings back anything unfinished, and it is fast.
        worker.kill()


@pytest.fixture(scope="session", autouse=True)
def _delete_run_queue() -> Iterator[None]:
    """Delete this run's queue at the end: on the shared Redis or RabbitMQ it outlives the run."""
    yield
    from tests.support import delete_run_queue

    delete_run_queue()


# The two permissions of revocation.permissions: start revocations, and read them.
OPERATOR_PERMS = ("add_revocationrequest", "view_revocationrequest")


@pytest.fixture
def operator(make_user: Any) -> Any:
    """Return a user who may start and read revocations (not staff, not superuser)."""
    return make_user(perms=OPERATOR_PERMS)


@pytest.fixture
def wait_done() -> Any:
    """Return a function that waits until a revocation request has finished."""
    from revocation.models import RevocationRequest
    from tests.support import wait_until

    def wait(request: RevocationRequest, timeout: float = 90) -> RevocationRequest:
        def finished() -> bool:
            request.refresh_from_db()
            return request.is_finished

        wait_until(finished, timeout=timeout, what=f"revocation #{request.pk} to finish")
        return request

    return wait


def logged_in_client(user: Any, **headers: Any) -> Any:
    """Return a test client logged in as `user` through Django's login()."""
    from django.test import Client

    client = Client(**headers)
    client.force_login(user)
    # One request so cached engines hold the session in the cache too.
    assert client.get("/t/whoami/").json()["user"] == user.pk
    return client


def is_logged_in(client: Any) -> bool:
    """Return whether the server still accepts the client's session cookie."""
    return client.get("/t/whoami/").json()["user"] is not None


@pytest.fixture
def no_rate_limit(settings: Any) -> None:
    """Lift the API rate limits (their counters live in the shared cache, across runs)."""
    settings.REVOCATION_API_WRITE_RATE = "100000/s"
    settings.REVOCATION_API_READ_RATE = "100000/s"


def csrf_client(user: Any, **headers: Any) -> Any:
    """Return a logged-in client that enforces CSRF, and the token to send as X-CSRFToken."""
    client = logged_in_client(user, enforce_csrf_checks=True, **headers)
    client.get("/accounts/login/")  # any page with a form sets the csrftoken cookie
    return client, client.cookies["csrftoken"].value


def run_command(*args: str) -> tuple[str, str]:
    """Run a management command in this process; return (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()
