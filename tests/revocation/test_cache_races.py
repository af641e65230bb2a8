"""Races on the shared cache: fences, evicted sessions and rate limits, interleavings forced."""

from __future__ import annotations

import json
import pickle
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache, caches
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from revocation import deletion, engines, fences, monotonic, services, throttling
from revocation.models import RevocationFence, RevocationRequest, UserSession
from tests.conftest import ENGINES, csrf_client, is_logged_in, logged_in_client
from tests.support import free_port

# Transactional: fences reach the cache and evictions repeat on commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def cached_fence(key: str) -> float | None:
    """Return the fence the cache holds for `key` (epoch seconds), None if none."""
    value = cache.get(fences.CACHE_PREFIX + key)
    return None if value is None else value / 1_000_000


def stored_fence(key: str) -> float:
    """Return the fence the database holds for `key` (epoch seconds)."""
    return RevocationFence.objects.get(key=key).not_before.timestamp()


def in_other_thread(work: Callable[[], Any]) -> Any:
    """Run `work` on another thread (so another database connection) and return its result."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = work()
        except BaseException as exc:  # re-raised on the calling thread
            result["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


# --- Fences ------------------------------------------------------------------------


@pytest.mark.parametrize("fence_before", [False, True], ids=["no-fence-before", "older-fence"])
def test_a_load_after_a_miss_never_overwrites_a_fence_mirrored_meanwhile(
    make_user: Any, monkeypatch: pytest.MonkeyPatch, fence_before: bool
) -> None:
    u = make_user()
    key = fences.user_key(u.pk)
    if fence_before:
        # In the database only (the cache lost it): the miss reads this one.
        RevocationFence.objects.create(key=key, not_before=timezone.now() - timedelta(days=1))
    read_fences = fences._from_db

    def read_then_a_revocation_commits(keys: list[str]) -> dict[str, int]:
        seen = read_fences(keys)
        monkeypatch.setattr(fences, "_from_db", read_fences)
        # Between the loader's read and its write: commit, and mirror on commit.
        services.revoke_user_sessions(u)
        return seen

    monkeypatch.setattr(fences, "_from_db", read_then_a_revocation_commits)
    seen = fences.fences_of([key])[key]

    revoked_at = RevocationRequest.objects.get().created_at.timestamp()
    assert seen < revoked_at  # the racing request saw the database before the commit
    assert stored_fence(key) == revoked_at
    assert cached_fence(key) == revoked_at
    assert fences.fences_of([key]) == {key: revoked_at}


def test_revocations_committing_in_reverse_order_leave_the_newer_fence_cached() -> None:
    key = fences.group_key("ops")
    newer = timezone.now()
    older = newer - timedelta(seconds=5)
    with transaction.atomic():
        fences.record([key], newer)
    with transaction.atomic():
        fences.record([key], older)  # requested first, committed last
    assert stored_fence(key) == newer.timestamp()
    assert cached_fence(key) == newer.timestamp()


def test_mirrors_running_in_reverse_order_leave_the_newer_fence_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = fences.GLOBAL
    newer = timezone.now()
    older = newer - timedelta(seconds=5)
    mirror = fences._mirror
    pending: list[dict[str, int]] = []
    monkeypatch.setattr(fences, "_mirror", pending.append)
    with transaction.atomic():
        fences.record([key], older)
    with transaction.atomic():
        fences.record([key], newer)
    # The first committer's on-commit hook is the last to reach the cache.
    mirror(pending[1])
    mirror(pending[0])
    assert cached_fence(key) == newer.timestamp()


def test_a_cache_without_atomic_keep_max_is_repaired_from_the_database(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memcached, the database cache: another process's older write may land after ours."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"races-{uuid.uuid4().hex}",
        }
    }
    monkeypatch.setattr(monotonic, "is_atomic", lambda: False)
    key = fences.scope_key("org", 7)
    newer = timezone.now()
    older = newer - timedelta(seconds=5)
    mirror = fences._mirror
    pending: list[dict[str, int]] = []
    monkeypatch.setattr(fences, "_mirror", pending.append)
    with transaction.atomic():
        fences.record([key], older)
    with transaction.atomic():
        fences.record([key], newer)
    backend = caches["default"]
    set_many = backend.set_many

    def then_the_other_process_writes(values: dict[str, Any], timeout: Any = None) -> Any:
        result = set_many(values, timeout)
        monkeypatch.setattr(backend, "set_many", set_many)
        # Its keep-max read the cache before our write: it saw nothing and writes older.
        set_many(fences._cache_keys(pending[0]), timeout)
        return result

    monkeypatch.setattr(backend, "set_many", then_the_other_process_writes)
    mirror(pending[1])
    assert cached_fence(key) == newer.timestamp()


def test_fences_of_answers_from_one_cache_call_when_everything_is_cached(
    make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    u = make_user()
    services.revoke_user_sessions(u)
    keys = [fences.user_key(u.pk), fences.GLOBAL, fences.group_key("ops")]
    expected = fences.fences_of(keys)  # loads the missing ones
    backend = caches["default"]
    calls: list[str] = []
    depth = [0]

    def counted(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if not depth[0]:  # the file cache's get_many calls get() per key: one call
                calls.append(name)
            depth[0] += 1
            try:
                return real(*args, **kwargs)
            finally:
                depth[0] -= 1

        return call

    for name in ("get", "get_many", "add", "set", "set_many", "has_key", "incr"):
        monkeypatch.setattr(backend, name, counted(name, getattr(backend, name)))
    with CaptureQueriesContext(connection) as queries:
        assert fences.fences_of(keys) == expected
    assert calls == ["get_many"]
    assert len(queries) == 0
    revoked_at = RevocationRequest.objects.get().created_at.timestamp()
    assert expected == {keys[0]: revoked_at, keys[1]: 0.0, keys[2]: 0.0}
    assert fences.latest(keys) == revoked_at


# --- cached_db: evicted after the deleting commit ----------------------------------------


@pytest.mark.parametrize("delete", ["delete_sessions", "delete_mapped"])
def test_a_session_reloaded_before_the_deleting_commit_is_evicted_after_it(
    make_user: Any, settings: Any, delete: str
) -> None:
    settings.SESSION_ENGINE = ENGINES["cached_db"]
    u = make_user()
    client = logged_in_client(u)
    session_key = client.session.session_key
    copy = (engines.current().cache_key_prefix or "") + session_key
    session_cache = caches[settings.SESSION_CACHE_ALIAS]
    assert session_cache.get(copy) is not None

    with transaction.atomic():
        if delete == "delete_sessions":
            deletion.delete_sessions([session_key])
        else:
            deletion.delete_mapped(UserSession.objects.filter(user=u), limit=10)
        assert session_cache.get(copy) is None  # evicted at once...
        # ...but a request on another connection still sees the row, and caches it again.
        in_other_thread(lambda: engines.store_class()(session_key).load())
        assert session_cache.get(copy) is not None

    assert session_cache.get(copy) is None
    assert not is_logged_in(client)


# --- Rate limits -------------------------------------------------------------------------


def test_parallel_writes_never_pass_the_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fixed in the middle of a window: the count cannot straddle two windows.
    window_start = 1_000_000 * 60.0
    monkeypatch.setattr(throttling, "_now", lambda: window_start + 15)
    start = threading.Barrier(40)
    answers: list[float | None] = []

    def one_write() -> None:
        start.wait()
        answers.append(throttling.hit("write", "racer", "20/min"))

    threads = [threading.Thread(target=one_write) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers.count(None) == 20
    # The refused wait until the window ends.
    assert sorted(a for a in answers if a is not None) == [45.0] * 20


def test_a_rate_limited_client_may_write_again_in_the_next_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [120.0]
    monkeypatch.setattr(throttling, "_now", lambda: now[0])
    assert [throttling.hit("write", "again", "2/min") for _ in range(3)] == [None, None, 60.0]
    now[0] = 179.5
    assert throttling.hit("write", "again", "2/min") == 1.0  # at least a second
    now[0] = 180.0
    assert throttling.hit("write", "again", "2/min") is None


def test_an_api_write_goes_through_when_the_cache_is_down(
    make_user: Any, settings: Any, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    # The fence check's once-a-minute warning: leave the next test's minute untouched.
    monkeypatch.setattr(fences, "_last_fallback_log", float("-inf"))
    settings.REVOCATION_API_WRITE_RATE = "1/min"
    admin = make_user(is_staff=True, is_superuser=True)
    target = make_user()
    client, token = csrf_client(admin)
    settings.CACHES = {
        "default": {
            "BACKEND": "revocation.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    statuses = [
        client.post(
            "/api/revocations",
            json.dumps({"user_ids": [target.pk]}),
            content_type="application/json",
            headers={"X-CSRFToken": token},
        ).status_code
        for _ in range(2)
    ]
    assert statuses == [202, 202]  # unlimited, not refused, while the cache is down
    assert RevocationRequest.objects.count() == 2
    assert "rate limit 'write' not applied" in caplog.text


def test_a_failed_eviction_after_the_commit_is_logged_not_raised(
    make_user: Any, settings: Any, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    settings.SESSION_ENGINE = ENGINES["cached_db"]
    client = logged_in_client(make_user())
    session_key = client.session.session_key
    session_cache = caches[settings.SESSION_CACHE_ALIAS]

    def unreachable(keys: Any, version: Any = None) -> None:
        raise ConnectionError("the cache went away")

    with transaction.atomic():
        deletion.delete_sessions([session_key])
        monkeypatch.setattr(session_cache, "delete_many", unreachable)

    # The deletion committed all the same; the copy cached meanwhile (if any) is named.
    assert not engines.session_model().objects.filter(session_key=session_key).exists()
    assert (
        "revocation: could not evict 1 cached sessions after commit; a copy cached "
        "between the delete and the commit lives until it expires"
    ) in caplog.messages


# --- Keep-the-maximum without an atomic cache: the repair from the database ----------------


@pytest.fixture
def non_atomic_cache(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Return a cache whose keep-the-maximum is atomic in this process only (as Memcached)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"races-{uuid.uuid4().hex}",
        }
    }
    monkeypatch.setattr(monotonic, "is_atomic", lambda: False)
    return caches["default"]


def test_the_repair_raises_lowered_fences_and_leaves_evicted_ones_to_the_next_read(
    non_atomic_cache: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    lowered, evicted = fences.group_key("ops"), fences.scope_key("org", 7)
    at = timezone.now()
    older = fences._micros(at - timedelta(seconds=5))
    set_many = non_atomic_cache.set_many

    def then_another_process_writes(values: dict[str, Any], timeout: Any = None) -> Any:
        result = set_many(values, timeout)
        monkeypatch.setattr(non_atomic_cache, "set_many", set_many)
        # Between our write and our check: one fence lowered, one evicted.
        set_many({fences.CACHE_PREFIX + lowered: older}, timeout)
        non_atomic_cache.delete(fences.CACHE_PREFIX + evicted)
        return result

    monkeypatch.setattr(non_atomic_cache, "set_many", then_another_process_writes)
    with transaction.atomic():
        fences.record([lowered, evicted], at)

    assert cached_fence(lowered) == at.timestamp()
    assert cached_fence(evicted) is None  # the next read loads it from the database
    assert fences.fences_of([evicted]) == {evicted: at.timestamp()}
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_cache_that_keeps_losing_the_maximum_is_reported(
    non_atomic_cache: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    key = fences.scope_key("org", 7)
    at = timezone.now()
    older = fences._micros(at - timedelta(seconds=5))
    set_many = non_atomic_cache.set_many

    def every_write_is_followed_by_an_older_one(values: dict[str, Any], timeout: Any = None) -> Any:
        set_many(values, timeout)
        return set_many(dict.fromkeys(values, older), timeout)

    monkeypatch.setattr(non_atomic_cache, "set_many", every_write_is_followed_by_an_older_one)
    with transaction.atomic():
        fences.record([key], at)

    assert f"revocation: cached fences {[key]} keep falling behind the database" in (
        caplog.messages
    )
    # The database still has it: the fence holds wherever the cache is bypassed.
    assert stored_fence(key) == at.timestamp()


# --- How long a cached fence lives --------------------------------------------------------


def seconds_to_live(key: str) -> float | None:
    """Return how long the default cache keeps `key` (None: forever), as the backend records it."""
    backend = caches["default"]
    stored_key = backend.make_and_validate_key(key)
    if isinstance(backend, RedisCache):
        ttl = backend._cache.get_client(stored_key).ttl(stored_key)  # type: ignore[attr-defined]
        assert ttl != -2, f"{key} is not cached"
        return None if ttl == -1 else float(ttl)
    if isinstance(backend, FileBasedCache):
        with open(backend._key_to_file(key), "rb") as file:  # type: ignore[attr-defined]
            expiry = pickle.load(file)  # noqa: S301 - the cache's own file
    elif isinstance(backend, LocMemCache):
        expiry = backend._expire_info[stored_key]  # type: ignore[attr-defined]
    else:
        raise AssertionError(f"no way to read expiries of {type(backend).__name__}")
    return None if expiry is None else expiry - time.time()


def lives_a_session_age(key: str) -> bool:
    """Return whether the cache keeps `key` for SESSION_COOKIE_AGE: not forever, not less."""
    age = django_settings.SESSION_COOKIE_AGE
    ttl = seconds_to_live(fences.CACHE_PREFIX + key)
    return ttl is not None and age - 60 < ttl <= age


@pytest.mark.parametrize("how", ["mirrored", "loaded"])
def test_a_cached_fence_lives_as_long_as_a_session_can(make_user: Any, how: str) -> None:
    """No longer: a fence older than every session refuses nothing and would only pile up."""
    u = make_user()
    key = fences.user_key(u.pk)
    services.revoke_user_sessions(u)
    if how == "loaded":
        cache.delete(fences.CACHE_PREFIX + key)
        fences.fences_of([key])
    assert cached_fence(key) == stored_fence(key)
    assert lives_a_session_age(key)


def test_a_repaired_fence_lives_as_long_as_a_session_can(
    non_atomic_cache: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = fences.group_key("ops")
    at = timezone.now()
    set_many = non_atomic_cache.set_many

    def then_another_process_writes_forever(values: dict[str, Any], timeout: Any = None) -> Any:
        result = set_many(values, timeout)
        monkeypatch.setattr(non_atomic_cache, "set_many", set_many)
        set_many({fences.CACHE_PREFIX + key: 1}, None)
        return result

    monkeypatch.setattr(non_atomic_cache, "set_many", then_another_process_writes_forever)
    with transaction.atomic():
        fences.record([key], at)

    assert cached_fence(key) == at.timestamp()
    assert lives_a_session_age(key)


def test_an_atomic_cache_is_not_checked_against_the_database_after_a_mirror() -> None:
    """Redis and the file cache keep the maximum in one step: no repair round trip."""
    assert monotonic.is_atomic()
    key = fences.group_key("ops")
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        fences.record([key], timezone.now())
        in_transaction = len(queries)
    after_commit = [q["sql"] for q in queries.captured_queries[in_transaction:]]
    assert after_commit in ([], ["COMMIT"])
    assert cached_fence(key) == stored_fence(key)


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs REDIS_URL")
def test_on_redis_no_write_can_land_between_reading_and_raising_a_fence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Keep-the-maximum is one step on the server: nothing of another process is overwritten."""
    key = fences.CACHE_PREFIX + fences.GLOBAL
    backend = caches["default"]
    ours = fences._micros(timezone.now())
    written = [ours]
    set_many = backend.set_many

    def another_process_writes_first(values: dict[str, Any], timeout: Any = None) -> Any:
        # Only a read-then-write has a "between": a newer fence lands there.
        written.append(ours + 5_000_000)
        set_many({key: written[-1]}, timeout)
        return set_many(values, timeout)

    monkeypatch.setattr(backend, "set_many", another_process_writes_first)
    monotonic.raise_many({key: ours}, 60)

    assert backend.get(key) == max(written)
