"""pytest plugin of the mutation runs: concurrent runs get their own test database.

mutmut runs the tests of several mutants at once, each in a process forked from
one that already loaded the settings, so they would all share one SQLite test
file (or one PostgreSQL test database). Each process claims a free numbered slot
with a file lock and uses the test database of that slot, kept between runs
(`--reuse-db`). Tests that start a Celery worker or beat are left out: a worker
subprocess is slow to start and a mutant must be killed by the tests in this process.
The tests of the mutated modules run first, so a killed mutant stops early.
"""

from __future__ import annotations

import fcntl
import itertools
import os
from pathlib import Path
from typing import Any

import pytest

# The test files of the mutated modules, run first (the order within a file is kept).
FOCUSED = [
    "test_fences.py",
    "test_cache_races.py",
    "test_deletion.py",
    "test_jobs.py",
    "test_linking.py",
    "test_kept_session.py",
    "test_pipeline.py",
    "test_security_headers.py",
]
# (pid, slot) of the slot this process holds; a forked child claims its own.
_held: tuple[int, int] | None = None
# Each database's TEST NAME before any slot was applied (a child inherits them).
_original_names: dict[str, Any] = {}


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the tests that start a real worker or beat; run the focused tests first."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        (dropped if "start_worker" in fixtures else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    # mutmut stops at the first failure (-x): the tests of the mutated modules kill most
    # mutants, so they go before the broad ones (the API, the pages) that mostly pass.
    kept.sort(key=lambda item: _rank(item.nodeid))
    items[:] = kept


def _rank(nodeid: str) -> int:
    """Return where the test `nodeid` runs: the focused test files first, in FOCUSED order."""
    name = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    return FOCUSED.index(name) if name in FOCUSED else len(FOCUSED)
