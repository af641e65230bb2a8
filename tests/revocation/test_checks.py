"""System checks flag the setups that would leave revoked sessions alive."""

from __future__ import annotations

from typing import Any

from revocation.checks import MIDDLEWARE_PATH, check_middleware, check_session_engine


def test_signed_cookies_without_the_fence_middleware_warns(settings: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    assert check_session_engine() == []  # the middleware's fence covers it
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE_PATH]
    assert [m.id for m in check_session_engine()] == ["revocation.W002"]


def test_unknown_session_limit_policy_is_an_error(settings: Any) -> None:
    from revocation.checks import check_session_limit_policy

    settings.REVOCATION_MAX_SESSIONS_POLICY = "kick_everyone"
    assert [m.id for m in check_session_limit_policy()] == ["revocation.E002"]
    settings.REVOCATION_MAX_SESSIONS_POLICY = "refuse"
    assert check_session_limit_policy() == []


def test_server_side_engines_pass(settings: Any) -> None:
    for engine in ("db", "cached_db", "cache"):
        settings.SESSION_ENGINE = f"django.contrib.sessions.backends.{engine}"
        assert check_session_engine() == []


def test_missing_middleware_warns(settings: Any) -> None:
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE_PATH]
    assert [m.id for m in check_middleware()] == ["revocation.W001"]


def test_middleware_before_authentication_is_an_error(settings: Any) -> None:
    rest = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE_PATH]
    settings.MIDDLEWARE = [MIDDLEWARE_PATH, *rest]
    assert [m.id for m in check_middleware()] == ["revocation.E001"]


def test_configured_project_is_clean() -> None:
    assert check_middleware() == [] and check_session_engine() == []
