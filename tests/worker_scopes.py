"""Scope resolvers that misbehave on purpose, to drive a real worker down its error paths.

Each takes a file path as its value (valid as given: accepting a request calls none of
them) and keeps its state in files beside it, so the test and the worker's processes
share it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db import OperationalError
from django.db.models import QuerySet


def _everyone() -> QuerySet[Any]:
    return get_user_model()._default_manager.values("pk")


def _count_call(value: str) -> int:
    """Record one call in the log beside `value` and return the calls so far, this one included.

    One appended line per call: O_APPEND keeps concurrent callers in other processes
    from losing a count, as a read-then-write counter would.
    """
    log = Path(value).with_suffix(".calls")
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
    finally:
        os.close(fd)
    return len(log.read_text().splitlines())


def calls(value: str) -> int:
    """Return how many calls the resolvers above have counted for `value`."""
    log = Path(value).with_suffix(".calls")
    return len(log.read_text().splitlines()) if log.exists() else 0


def turnstile(value: str) -> QuerySet[Any]:
    """Every user; every call blocks while the file `value` exists.

    Unlike tests.scopes.gated it blocks all callers, whatever their number, and counts
    them exactly: a test sees how many jobs are inside a page at once.
    """
    _count_call(value)
    while Path(value).exists():
        time.sleep(0.05)
    return _everyone()


def flaky(value: str) -> QuerySet[Any]:
    """Every user; the first N calls (N written in the file `value`) raise a DatabaseError."""
    n = _count_call(value)
    if n <= int(Path(value).read_text()):
        raise OperationalError(f"flaky resolver: call {n} lost the database connection")
    return _everyone()


def broken(value: str) -> QuerySet[Any]:
    """Raise an error no retry can fix: a bug in a project's resolver."""
    _count_call(value)
    raise RuntimeError("resolver bug: org table renamed")


for _resolver in (turnstile, flaky, broken):
    _resolver.clean = str  # type: ignore[attr-defined]
