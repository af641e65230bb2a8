"""System checks flag the setups that would leave revoked sessions alive."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.checks import run_checks

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


def revocation_errors(**kwargs: Any) -> list[tuple[str, str]]:
    """Return (id, message) of every revocation check message of a full system check run."""
    messages = run_checks(**kwargs)
    return [(m.id, m.msg) for m in messages if m.id and m.id.startswith("revocation.")]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REVOCATION_BATCH_SIZE", "abc"),
        ("REVOCATION_BATCH_SIZE", 0),
        ("REVOCATION_MAINTENANCE_BATCH_SIZE", -5),
        ("REVOCATION_SWEEP_INTERVAL", "15s"),
        ("REVOCATION_VISIBILITY_TIMEOUT", 0),
        ("REVOCATION_STALL_TIMEOUT", -1),
        ("REVOCATION_TOUCH_INTERVAL", "5 min"),
        ("REVOCATION_OWNER_CHECK_ROWS", "many"),
        ("REVOCATION_SCOPES", "org"),
        ("REVOCATION_LOCK_BACKEND", 3),
        ("REVOCATION_MAX_SESSIONS_POLICY", None),
        ("REVOCATION_RECORD_IP", "partial"),
        ("REVOCATION_RECORD_IP", False),
        ("REVOCATION_RECORD_USER_AGENT", "browser"),
        ("REVOCATION_CLIENT_IP_HEADER", "X Real IP"),
        ("REVOCATION_CLIENT_IP_HEADER", "X-Real-IP:"),
        ("REVOCATION_AUDIT_PERSONAL_DATA_DAYS", -1),
        ("REVOCATION_IDLE_TIMEOUT", "15 min"),
        ("REVOCATION_IDLE_TIMEOUT", -1),
        ("REVOCATION_MAX_LIFETIME", 8.5),
        ("REVOCATION_MAX_LIFETIME", True),
    ],
)
def test_a_malformed_setting_is_an_error_naming_it_and_its_value(
    name: str, value: Any, settings: Any
) -> None:
    setattr(settings, name, value)
    [(id_, message)] = revocation_errors()
    assert id_ == "revocation.E003"
    assert message.startswith(f"{name} must be ") and message.endswith(f", got {value!r}")


def test_a_malformed_setting_in_the_environment_is_an_error(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    del settings.REVOCATION_BATCH_SIZE
    monkeypatch.setenv("REVOCATION_BATCH_SIZE", "abc")
    assert revocation_errors() == [
        ("revocation.E003", "REVOCATION_BATCH_SIZE must be a positive integer, got 'abc'")
    ]


@pytest.mark.parametrize("backend", ["zookeeper", "redis"])
def test_an_unusable_lock_backend_is_an_error(backend: str, settings: Any) -> None:
    # Not Django's Redis cache: the redis lock has nothing to lock on.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.REVOCATION_LOCK_BACKEND = backend
    [(id_, message)] = revocation_errors()
    assert id_ == "revocation.E004"
    assert "REVOCATION_LOCK_BACKEND" in message and repr(backend) in message


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_a_lock_backend_on_the_wrong_database_is_an_error(backend: str, settings: Any) -> None:
    from django.db import connection

    settings.REVOCATION_LOCK_BACKEND = backend
    expected = [] if connection.vendor == backend else ["revocation.E004"]
    assert [id_ for id_, _ in revocation_errors()] == expected


@pytest.mark.parametrize("name", ["REVOCATION_API_WRITE_RATE", "REVOCATION_API_READ_RATE"])
@pytest.mark.parametrize("rate", ["20 per minute", "20/fortnight", "/min"])
def test_a_malformed_api_rate_is_an_error(name: str, rate: str, settings: Any) -> None:
    setattr(settings, name, rate)
    [(id_, message)] = revocation_errors()
    assert id_ == "revocation.E005"
    assert message.startswith(f"{name} is {rate!r}: ")


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("tests.no_such_module.members", "cannot be imported"),
        ("tests.scopes.no_such_resolver", "cannot be imported"),
        ("revocation.checks.MIDDLEWARE_PATH", "is not callable"),
    ],
)
def test_a_scope_that_is_not_an_importable_callable_is_an_error(
    path: str, problem: str, settings: Any
) -> None:
    settings.REVOCATION_SCOPES = {"org": "tests.orgs.scopes.org_members", "team": path}
    [(id_, message)] = revocation_errors()
    assert id_ == "revocation.E006"
    assert message.startswith(f"REVOCATION_SCOPES['team'] = {path!r} {problem}")


def test_scopes_given_only_in_the_environment_are_checked(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    del settings.REVOCATION_SCOPES
    monkeypatch.setenv("REVOCATION_SCOPES", "org=tests.orgs.scopes.org_members")
    assert revocation_errors() == []
    monkeypatch.setenv("REVOCATION_SCOPES", "org=tests.orgs.scopes.nobody")
    assert [id_ for id_, _ in revocation_errors()] == ["revocation.E006"]


def test_the_shipped_defaults_pass_every_check(settings: Any, monkeypatch: Any) -> None:
    for name in dir(django_settings):
        if name.startswith("REVOCATION_"):
            delattr(settings, name)
    for name in [n for n in os.environ if n.startswith("REVOCATION_")]:
        monkeypatch.delenv(name)
    assert revocation_errors() == []


def test_the_test_project_passes_every_check() -> None:
    assert revocation_errors() == []


def test_a_client_ip_header_with_a_proxy_count_warns_that_the_count_is_ignored(
    settings: Any,
) -> None:
    settings.REVOCATION_CLIENT_IP_HEADER = "CF-Connecting-IP"
    settings.REVOCATION_TRUSTED_PROXY_COUNT = 2
    [(id_, message)] = revocation_errors()
    assert id_ == "revocation.W004"
    assert "the proxy count is ignored" in message

    settings.REVOCATION_TRUSTED_PROXY_COUNT = 0
    assert revocation_errors() == []


def test_a_geoip_path_that_leads_nowhere_warns(settings: Any, tmp_path: Any) -> None:
    settings.GEOIP_PATH = str(tmp_path / "nowhere")
    [(id_, message)] = revocation_errors()
    assert id_ == "revocation.W005"
    assert message.startswith("GEOIP_PATH is set, but ")


@pytest.mark.parametrize(
    ("name", "given", "parsed"),
    [
        ("RECORD_IP", " Truncated ", "truncated"),
        ("RECORD_USER_AGENT", "DEVICE", "device"),
        ("CLIENT_IP_HEADER", " X-Real-IP ", "X-Real-IP"),
    ],
)
def test_privacy_and_client_ip_settings_are_read_from_the_environment(
    settings: Any, monkeypatch: pytest.MonkeyPatch, name: str, given: str, parsed: str
) -> None:
    from revocation.app_settings import app_settings

    if hasattr(django_settings, f"REVOCATION_{name}"):
        delattr(settings, f"REVOCATION_{name}")
    monkeypatch.setenv(f"REVOCATION_{name}", given)
    assert getattr(app_settings, name) == parsed
    assert revocation_errors() == []


def session_limit_warnings(**limits: int) -> list[tuple[str, str]]:
    """Return (id, message) of the session limit check with these REVOCATION_* settings."""
    from django.test import override_settings

    from revocation.checks import check_session_limits

    with override_settings(**{f"REVOCATION_{name}": value for name, value in limits.items()}):
        return [(m.id or "", m.msg) for m in check_session_limits()]


def test_a_touch_interval_over_half_the_idle_timeout_warns() -> None:
    assert session_limit_warnings(IDLE_TIMEOUT=600, TOUCH_INTERVAL=300) == []
    assert session_limit_warnings(IDLE_TIMEOUT=0, TOUCH_INTERVAL=3000) == []
    [(id_, message)] = session_limit_warnings(IDLE_TIMEOUT=599, TOUCH_INTERVAL=300)
    assert id_ == "revocation.W006"
    assert message == (
        "REVOCATION_TOUCH_INTERVAL (300) is more than half of REVOCATION_IDLE_TIMEOUT (599): "
        "activity is stamped every 299 s instead, so a session idle for 300 s may already be "
        "logged out."
    )


def test_a_lifetime_not_longer_than_the_idle_timeout_warns() -> None:
    assert session_limit_warnings(IDLE_TIMEOUT=600, MAX_LIFETIME=601, TOUCH_INTERVAL=60) == []
    assert session_limit_warnings(IDLE_TIMEOUT=0, MAX_LIFETIME=60, TOUCH_INTERVAL=60) == []
    assert session_limit_warnings(IDLE_TIMEOUT=600, MAX_LIFETIME=0, TOUCH_INTERVAL=60) == []
    [(id_, message)] = session_limit_warnings(IDLE_TIMEOUT=600, MAX_LIFETIME=600, TOUCH_INTERVAL=60)
    assert id_ == "revocation.W007"
    assert "REVOCATION_MAX_LIFETIME (600)" in message and "REVOCATION_IDLE_TIMEOUT (600)" in message


def test_a_malformed_session_limit_is_reported_once(settings: Any) -> None:
    settings.REVOCATION_IDLE_TIMEOUT = "soon"
    assert [id_ for id_, _ in revocation_errors()] == ["revocation.E003"]
