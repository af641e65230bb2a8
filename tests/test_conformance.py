"""The conformance harness (conformance/): where it puts our middleware, and its allowlist."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.harness import AUTH_MIDDLEWARE, MIDDLEWARE, with_revocation_middleware
from conformance.run import read_allowlist

SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"
MESSAGES = "django.contrib.messages.middleware.MessageMiddleware"


def test_middleware_goes_right_after_authentication_middleware() -> None:
    chain = with_revocation_middleware((SESSIONS, AUTH_MIDDLEWARE, MESSAGES))
    assert chain == [SESSIONS, AUTH_MIDDLEWARE, MIDDLEWARE, MESSAGES]


def test_middleware_is_not_added_without_authentication_or_twice() -> None:
    assert with_revocation_middleware([SESSIONS]) == [SESSIONS]
    chain = [SESSIONS, AUTH_MIDDLEWARE, MIDDLEWARE]
    assert with_revocation_middleware(chain) == chain


def test_every_allowlist_entry_says_why_it_is_by_design() -> None:
    assert all(reason for reason in read_allowlist().values())


def test_allowlist_entry_without_reason_is_refused(tmp_path: Path) -> None:
    allowlist = tmp_path / "allowlist.txt"
    allowlist.write_text("# comment\n\nsessions_tests.tests.X.test_y\n")
    with pytest.raises(SystemExit, match="say why sessions_tests.tests.X.test_y"):
        read_allowlist(allowlist)
