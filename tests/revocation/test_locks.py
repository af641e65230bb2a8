"""One maintenance run at a time, on every lock backend, against the real database and Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test import Client
from django.utils import timezone

from revocation import locks, maintenance
from tests.support import ROOT, subprocess_env, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=locks.BACKENDS)
def lock_backend(request: pytest.FixtureRequest, settings: Any) -> str:
    """Run the test once per lock backend this test run's database and cache support."""
    backend = str(request.param)
    redis_cache = isinstance(caches["default"], RedisCache)
    if backend in ("postgresql", "mysql", "sqlite") and connection.vendor != backend:
        pytest.skip(f"the database is {connection.vendor}")
    if backend in ("redis", "cache") and not redis_cache:
        # cache.add() is not atomic on the file cache; `cache` is only sound on Redis here.
        pytest.skip("needs REDIS_URL")
    settings.REVOCATION_LOCK_BACKEND = backend
    return backend


def expired_sessions(n: int) -> list[str]:
    """Store `n` expired sessions (through a real login each) and return their keys."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=f"u{os.urandom(4).hex()}")
    keys = []
    for _ in range(n):
        client = Client()
        client.force_login(user)
        keys.append(str(client.session.session_key))
    Session.objects.filter(pk__in=keys).update(expire_date=timezone.now() - timedelta(hours=1))
    return keys


def test_two_concurrent_runs_one_skips(lock_backend: str) -> None:
    keys = expired_sessions(4)
    inside, let_go = threading.Event(), threading.Event()
    first: list[maintenance.Summary] = []

    def pause_after_first_batch(phase: str, done: int) -> None:
        inside.set()
        assert let_go.wait(timeout=60)

    def run_first() -> None:
        try:
            first.append(maintenance.clearsessions(batch_size=1, progress=pause_after_first_batch))
        finally:
            connection.close()

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert inside.wait(timeout=60), "the first run never started"
        # The first run holds the lock, paused after its first batch.
        left = Session.objects.filter(pk__in=keys).count()
        second = maintenance.clearsessions(batch_size=1)
        assert second.skipped
        assert second.sessions_deleted == 0
        assert Session.objects.filter(pk__in=keys).count() == left
    finally:
        let_go.set()
        thread.join(timeout=120)
    assert not first[0].skipped
    assert first[0].sessions_deleted == 4
    # Released at the end: the next run is not skipped.
    assert not maintenance.clearsessions().skipped


def elsewhere(function: Any) -> Any:
    """Return `function()` run in another thread, on a database connection of its own.

    (PostgreSQL advisory locks and MySQL named locks are re-entrant within one connection.)
    """
    result: list[Any] = []

    def target() -> None:
        try:
            result.append(function())
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=120)
    return result[0]


def test_different_jobs_do_not_block_each_other(lock_backend: str) -> None:
    with locks.hold("revocation.clearsessions") as held:
        assert held is not None
        assert not elsewhere(maintenance.prune_orphans).skipped
        assert elsewhere(maintenance.clearsessions).skipped


def test_the_command_prints_skipped_and_exits_0_while_another_run_holds_the_lock(
    lock_backend: str,
) -> None:
    expired_sessions(2)
    env = subprocess_env(REVOCATION_LOCK_BACKEND=lock_backend)
    command = [sys.executable, "manage.py", "clearsessions"]

    with locks.hold("revocation.clearsessions") as held:
        assert held is not None
        human = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        as_json = subprocess.run(
            [*command, "--json"], cwd=ROOT, env=env, capture_output=True, text=True
        )

    assert human.returncode == 0, human.stderr
    assert human.stdout.startswith("Skipped: another clearsessions run holds the")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout.strip().splitlines()[-1])["skipped"] is True
    assert Session.objects.count() == 2

    after = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert after.returncode == 0, after.stderr
    assert after.stdout.startswith("Deleted 2 expired sessions")


HOLDER = """
import sys, django
django.setup()
from revocation import locks
lock = locks.make_lock("revocation.clearsessions", ttl=2)
assert lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""


def test_a_killed_holder_does_not_block_the_next_run(lock_backend: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        cwd=ROOT,
        env=subprocess_env(REVOCATION_LOCK_BACKEND=lock_backend),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert maintenance.clearsessions().skipped
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    # The database and the kernel drop the lock with the process; Redis once the TTL runs out.
    wait_until(
        lambda: not maintenance.clearsessions().skipped,
        timeout=30,
        what=f"the {lock_backend} lock of a killed process to be released",
    )


def test_redis_lock_is_released_only_by_its_owner(settings: Any) -> None:
    if not isinstance(caches["default"], RedisCache):
        pytest.skip("needs REDIS_URL")
    settings.REVOCATION_LOCK_BACKEND = "redis"
    stale = locks.make_lock("revocation.test-owner", ttl=1)
    assert stale.acquire()
    # A holder stuck past its TTL loses the lock to the next run...
    later = locks.make_lock("revocation.test-owner", ttl=60)
    wait_until(later.acquire, timeout=30, what="the stale lock to expire")
    # ...and waking up, it can neither extend nor release the new holder's lock.
    stale.renew()
    stale.release()
    assert not locks.make_lock("revocation.test-owner").acquire()
    later.release()
    assert locks.make_lock("revocation.test-owner").acquire()
    caches["default"].delete("revocation:lock:revocation.test-owner")


def test_an_unknown_lock_backend_is_named(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.REVOCATION_LOCK_BACKEND = "zookeeper"
    with pytest.raises(ImproperlyConfigured, match="'zookeeper'"):
        maintenance.clearsessions()
