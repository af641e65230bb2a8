"""The fence copy of each web process: current over pub/sub, and never trusted when it may not be.

Each test waits on conditions (the copy's thread works in the background), never on time.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.db import transaction
from django.utils import timezone

from revocation import fencecopy, fences, monotonic
from revocation.fencecopy import FenceCopy
from revocation.models import RevocationFence
from tests.conftest import is_logged_in, logged_in_client
from tests.support import ROOT, free_port, subprocess_env, wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs REDIS_URL"),
]


def ready() -> FenceCopy:
    """Return this process's copy once it answers for a session signed in now."""
    copy = fencecopy.current()
    assert copy is not None
    wait_until(lambda: copy.answers(time.time()), timeout=30, what="the fence copy to answer")
    return copy


def fence_behind_its_back(key: str) -> float:
    """Commit a fence as another process would whose publish never arrived; return it."""
    at = timezone.now()
    RevocationFence.objects.create(key=key, not_before=at)
    return at.timestamp()


class PrivateRedis:
    """A redis-server of the test's own, to stop, flush and start again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server, empty, on `port`."""
        self.process = subprocess.Popen(
            [
                "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: self.cli("ping") == "PONG", timeout=30, what="redis-server")

    def stop(self) -> None:
        """Shut the server down: every connection drops."""
        if self.process is not None:
            self.cli("shutdown", "nosave")
            self.process.wait(timeout=30)
            self.process = None

    def cli(self, *args: str) -> str:
        """Run one redis-cli command against the server; return its output."""
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()


@contextmanager
def private_redis(tmp_path: Path, settings: Any) -> Iterator[PrivateRedis]:
    """Point the default cache at a redis-server of this test's own, started."""
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        settings.CACHES = {
            "default": {
                **settings.CACHES["default"],
                "LOCATION": f"redis://127.0.0.1:{server.port}/0",
            }
        }
        yield server
    finally:
        server.stop()


def test_a_fence_committed_in_another_process_reaches_the_copy(make_user: Any) -> None:
    copy = ready()
    loads = copy.loads
    key = fences.user_key(make_user().pk)
    script = (
        "import django; django.setup()\n"
        "from django.db import transaction\n"
        "from django.utils import timezone\n"
        "from revocation import fences\n"
        "with transaction.atomic():\n"
        f"    fences.record([{key!r}], timezone.now())\n"
    )
    subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=subprocess_env(), check=True, timeout=120
    )
    stored = RevocationFence.objects.get(key=key).not_before.timestamp()
    wait_until(lambda: copy.fences_of([key])[key] == stored, timeout=30, what="the publish")
    assert copy.loads == loads  # heard, not reloaded


def test_checks_read_the_copy_with_no_round_trip(make_user: Any, monkeypatch: Any) -> None:
    revoked, kept = make_user(), make_user()
    stolen, other = logged_in_client(revoked), logged_in_client(kept)
    ready()
    with transaction.atomic():
        fences.record([fences.user_key(revoked.pk)], timezone.now())
    reads: list[list[str]] = []
    real = monotonic.get_many

    def counted(keys: list[str]) -> dict[str, int]:
        reads.append(keys)
        return real(keys)

    monkeypatch.setattr(monotonic, "get_many", counted)
    assert not is_logged_in(stolen)
    assert is_logged_in(other)
    assert reads == []


def test_a_restarted_redis_is_not_trusted_until_the_copy_reloaded(
    tmp_path: Path, settings: Any, make_user: Any
) -> None:
    user = make_user()
    client = logged_in_client(user)
    with private_redis(tmp_path, settings) as redis:
        copy = ready()
        redis.stop()
        wait_until(lambda: not copy.answers(time.time()), timeout=30, what="trust to lapse")
        # Committed while the copy could hear nothing: the check reads the database.
        at = fence_behind_its_back(fences.user_key(user.pk))
        assert not is_logged_in(client)
        redis.start()
        wait_until(lambda: copy.answers(time.time()), timeout=30, what="the copy to reload")
        assert copy.fences_of([fences.user_key(user.pk)])[fences.user_key(user.pk)] == at


def test_a_flushed_cache_makes_the_copy_reload(tmp_path: Path, settings: Any) -> None:
    with private_redis(tmp_path, settings) as redis:
        copy = ready()
        loads = copy.loads
        at = fence_behind_its_back("user:flushed")
        assert redis.cli("flushall") == "OK"
        wait_until(lambda: copy.loads > loads, timeout=30, what="the reload")
        assert copy.fences_of(["user:flushed"]) == {"user:flushed": at}
        wait_until(lambda: copy.answers(time.time()), timeout=30, what="the copy to answer")


def test_a_dropped_subscription_makes_the_copy_reload(tmp_path: Path, settings: Any) -> None:
    with private_redis(tmp_path, settings) as redis:
        copy = ready()
        loads = copy.loads
        assert redis.cli("client", "kill", "type", "pubsub") == "1"
        wait_until(lambda: copy.loads > loads, timeout=30, what="the reload")
        wait_until(lambda: copy.answers(time.time()), timeout=30, what="the copy to answer")


def test_past_its_bound_the_copy_does_not_answer(settings: Any) -> None:
    settings.REVOCATION_FENCE_COPY_MAX_KEYS = 3
    copy = ready()
    at = timezone.now()
    with transaction.atomic():
        fences.record([f"user:bound-{n}" for n in range(4)], at)
    wait_until(lambda: not copy.answers(time.time()), timeout=30, what="the copy to give up")
    assert copy.values == {}
    # Checks read the cache meanwhile.
    assert fences.is_fenced({SESSION_KEY: "bound-3"}, at.timestamp() - 1)


def test_sessions_signed_in_before_the_horizon_are_checked_in_the_cache(settings: Any) -> None:
    copy = ready()
    old = time.time() - settings.SESSION_COOKIE_AGE - 60
    assert copy.answers(time.time())
    assert not copy.answers(old)


def test_off_without_redis_or_with_a_bound_of_zero(settings: Any) -> None:
    settings.REVOCATION_FENCE_COPY_MAX_KEYS = 0
    assert fencecopy.current() is None
    settings.REVOCATION_FENCE_COPY_MAX_KEYS = 10
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert fencecopy.current() is None


def test_trust_lasts_from_a_ping_sent_after_the_load_for_grace_seconds() -> None:
    copy = FenceCopy(max_keys=10)  # its thread not started: the messages are handed in
    copy.horizon = 0.0
    loaded = copy._loaded_at = time.monotonic() - 10

    def pong(sent: float) -> None:
        copy._handle({"type": "pong", "data": repr(sent).encode()}, client=None)

    pong(loaded - 1)  # sent before the load: vouches for nothing
    assert not copy.answers(time.time())
    pong(time.monotonic() - fencecopy.GRACE - 1)  # answered, but too long ago
    assert not copy.answers(time.time())
    pong(time.monotonic())
    assert copy.answers(time.time())


def test_a_process_that_only_records_fences_keeps_no_copy() -> None:
    fencecopy.reset()  # as a fresh worker or command process
    with transaction.atomic():
        fences.record(["user:recorded-only"], timezone.now())
    assert fencecopy.running() is None
