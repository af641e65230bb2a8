"""pytest plugin of the mutation runs: concurrent runs get their own database and cache.

mutmut runs the tests of several mutants at once, each in a process forked from
one that already loaded the settings, so they would all share one SQLite test
file (or one PostgreSQL test database) and one cache. Each process claims a free
numbered slot with a file lock and uses the test database of that slot, kept
between runs (`--reuse-db`), and a cache of its own: a folder of its own for the
file cache, the next Redis database numbers for Redis (the same user ids in two
slots would otherwise share their fences, and one slot's `cache.clear()` would
empty the other's). Tests that start a Celery worker or beat are left out: a worker
subprocess is slow to start and a mutant must be killed by the tests in this process.
Of the tests mutmut found reaching a mutated function, only those of its module's
guarantees run (COVERING): the request path is reached by nearly every test, and a
surviving mutant of it would otherwise run them all. They run in COVERING's order,
so a killed mutant stops early.
"""

from __future__ import annotations

import copy
import fcntl
import itertools
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

# Each mutated module, and the test files of its guarantees, in the order they run.
COVERING = {
    "revocation.fences": [
        "test_fences.py",
        "test_signed_cookies.py",
        "test_fencecopy.py",
        "test_kept_session.py",
        "test_cache_races.py",
        "test_accept_writes.py",
        "test_monotonic.py",
        "test_pipeline.py",
    ],
    "revocation.fencecopy": ["test_fencecopy.py", "test_fences.py", "test_kept_session.py"],
    "revocation.monotonic": [
        "test_monotonic.py",
        "test_cache_races.py",
        "test_fences.py",
        "test_fencecopy.py",
    ],
    "revocation.cachelock": ["test_cache_races.py", "test_fences.py"],
    "revocation.linking": [
        "test_linking.py",
        "test_signed_cookies.py",
        "test_lifetimes.py",
        "test_link_writes.py",
        "test_kept_session.py",
        "test_fences.py",
        "test_pipeline.py",
    ],
    "revocation.middleware": [
        "test_fences.py",
        "test_signed_cookies.py",
        "test_lifetimes.py",
        "test_linking.py",
        "test_kept_session.py",
        "test_security_headers.py",
    ],
    "revocation.lifetimes": ["test_lifetimes.py"],
    "revocation.deletion": [
        "test_deletion.py",
        "test_kept_session.py",
        "test_cache_races.py",
        "test_jobs.py",
        "test_bulk.py",
        "test_pipeline.py",
    ],
    "revocation.engines": [
        "test_engines.py",
        "test_signed_cookies.py",
        "test_deletion.py",
        "test_cache_races.py",
        "test_cache.py",
        "test_jobs.py",
        "test_pipeline.py",
    ],
    "revocation.sql.postgresql": [
        "test_deletion.py",
        "test_jobs.py",
        "test_bulk.py",
        "test_cache_races.py",
    ],
    "revocation.services.jobs": [
        "test_jobs.py",
        "test_fanout.py",
        "test_bulk.py",
        "test_kept_session.py",
        "test_pipeline.py",
        "test_failures.py",
        "test_task_errors.py",
        "test_outbox.py",
    ],
}
# (pid, slot) of the slot this process holds; a forked child claims its own.
_held: tuple[int, int] | None = None
# Each database's TEST NAME before any slot was applied (a child inherits them).
_original_names: dict[str, Any] = {}
# CACHES before any slot was applied.
_original_caches: dict[str, Any] = {}


def _claim_slot(folder: Path) -> int:
    """Return the number of a slot no other live process holds, and hold it until exit."""
    global _held
    if _held is not None and _held[0] == os.getpid():
        return _held[1]
    folder.mkdir(parents=True, exist_ok=True)
    for slot in itertools.count():
        fd = os.open(folder / f"slot-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        # The descriptor stays open: the lock lasts as long as this process.
        _held = (os.getpid(), slot)
        return slot
    raise AssertionError("unreachable")


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Point each test database at this process's slot, before pytest-django creates it."""
    from django.conf import settings
    from django.contrib.sessions.backends.file import SessionStore as FileSessionStore

    # Django's file engine caches its folder on the class: a second run in this process
    # (mutmut runs pytest again in the process, or in a fork of it) must not reuse the
    # tmp_path of the first.
    if "_storage_path" in vars(FileSessionStore):
        del FileSessionStore._storage_path  # type: ignore[attr-defined]
    slot = _claim_slot(Path(settings.VAR_DIR) / "mutation-slots")
    for alias, db in settings.DATABASES.items():
        test = db.setdefault("TEST", {})
        original = _original_names.setdefault(alias, test.get("NAME"))
        if db["ENGINE"] == "django.db.backends.sqlite3":
            base = str(original or Path(settings.VAR_DIR) / "test.sqlite3")
            stem, dot, suffix = base.rpartition(".")
            test["NAME"] = f"{stem}-slot{slot}.{suffix}" if dot else f"{base}-slot{slot}"
        else:
            test["NAME"] = f"{original or 'test_' + db['NAME']}_slot{slot}"
    _use_slot_caches(settings, slot)


def _use_slot_caches(settings: Any, slot: int) -> None:
    """Point every cache at this slot's own folder or Redis database, and reset the caches."""
    from django.test.signals import setting_changed

    if not _original_caches:
        _original_caches.update(copy.deepcopy(settings.CACHES))
    caches = copy.deepcopy(_original_caches)
    for cache in caches.values():
        location = str(cache.get("LOCATION", ""))
        if location.startswith(("redis://", "rediss://")):
            parts = urlsplit(location)
            db = int(parts.path.strip("/") or 0) + slot
            cache["LOCATION"] = urlunsplit(parts._replace(path=f"/{db}"))
        elif "FileBasedCache" in cache["BACKEND"]:
            cache["LOCATION"] = f"{location}-slot{slot}"
    settings.CACHES = caches
    # What override_settings sends: Django drops its cache connections, the app its fence copy.
    setting_changed.send(sender=type(settings), setting="CACHES", value=caches, enter=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the covering tests of the mutated module, in order; never a real worker or beat."""
    files = _covering(os.environ.get("MUTANT_UNDER_TEST", ""))
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        wanted = files is None or _file(item.nodeid) in files
        (kept if wanted and "start_worker" not in fixtures else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    # mutmut stops at the first failure (-x): the most telling files go first.
    if files is not None:
        kept.sort(key=lambda item: files.index(_file(item.nodeid)))
    items[:] = kept


def _covering(mutant: str) -> list[str] | None:
    """Return the covering test files of `mutant`'s module; None (all) outside a mutant's run."""
    if "__mutmut_" not in mutant:
        return None  # the stats and clean runs: every selected test
    module = mutant[: mutant.index(".x")]
    return COVERING.get(module)


def _file(nodeid: str) -> str:
    """Return the file name of the test `nodeid`."""
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
