"""Scope resolvers used by the tests (and an example of writing one)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet


def gated(value: str) -> QuerySet[Any]:
    """Every user; the Nth call (N written in the gate file `value`) blocks while it exists.

    Lets a test stop a worker at a known point of a job, mid-transaction.
    """
    gate = Path(value)
    calls = gate.with_suffix(".calls")
    n = int(calls.read_text()) + 1 if calls.exists() else 1
    calls.write_text(str(n))
    if gate.exists() and n >= int(gate.read_text()):
        gate.with_suffix(".held").write_text(str(n))
        while gate.exists():
            time.sleep(0.05)
    return get_user_model()._default_manager.values("pk")


# Values are file paths, valid as given: accepting a request must not count as a call.
gated.clean = str  # type: ignore[attr-defined]


def named(value: str) -> QuerySet[Any]:
    """The user whose username is `value`: a string-valued scope with no clean()."""
    return get_user_model()._default_manager.filter(username=value).values("pk")


def broken(value: str) -> QuerySet[Any]:
    """Nobody; looking up a user's values fails, as a scope store that is down would."""
    return get_user_model()._default_manager.none().values("pk")


def _scope_store_down(user_id: Any) -> list[str]:
    raise RuntimeError("scope store down")


broken.scopes_of = _scope_store_down  # type: ignore[attr-defined]
