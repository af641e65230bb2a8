"""App settings: Django settings, else the environment, else one default; errors name it."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from revocation.app_settings import AppSettings, app_settings

POSITIVE = ("BATCH_SIZE", "SWEEP_INTERVAL", "MAINTENANCE_BATCH_SIZE", "VISIBILITY_TIMEOUT")
# 0 means something for these: off, unlimited, keep forever, at once.
ZERO_OR_MORE = (
    "STALL_TIMEOUT",
    "PAGE_BUDGET_SECONDS",
    "TOUCH_INTERVAL",
    "TRUSTED_PROXY_COUNT",
    "MAX_SESSIONS_PER_USER",
    "REQUEST_RETENTION_DAYS",
    "OWNER_CHECK_ROWS",
    "IDLE_TIMEOUT",
    "MAX_LIFETIME",
)


@pytest.fixture
def unset(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Remove setting `name` from Django settings and the environment."""

    def remove(name: str) -> None:
        monkeypatch.delenv(name, raising=False)
        if hasattr(settings, name):
            delattr(settings, name)

    return remove


@pytest.mark.parametrize("attr", POSITIVE + ZERO_OR_MORE)
def test_a_bad_integer_in_settings_names_the_setting(attr: str, settings: Any, unset: Any) -> None:
    name = f"REVOCATION_{attr}"
    unset(name)
    setattr(settings, name, "abc")
    with pytest.raises(ImproperlyConfigured, match=rf"^{name} must be .* integer.*, got 'abc'$"):
        getattr(app_settings, attr)


@pytest.mark.parametrize("attr", POSITIVE + ZERO_OR_MORE)
def test_a_bad_integer_in_the_environment_names_the_setting(
    attr: str, unset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"REVOCATION_{attr}"
    unset(name)
    monkeypatch.setenv(name, "12x")
    with pytest.raises(ImproperlyConfigured, match=rf"^{name} must be .* integer.*, got '12x'$"):
        getattr(app_settings, attr)


@pytest.mark.parametrize("attr", POSITIVE)
def test_batch_sizes_and_intervals_must_be_positive(attr: str, settings: Any, unset: Any) -> None:
    name = f"REVOCATION_{attr}"
    unset(name)
    setattr(settings, name, 0)
    with pytest.raises(ImproperlyConfigured, match=rf"^{name} must be a positive integer, got 0$"):
        getattr(app_settings, attr)


@pytest.mark.parametrize("attr", ZERO_OR_MORE)
def test_zero_is_allowed_where_it_means_something(attr: str, settings: Any, unset: Any) -> None:
    name = f"REVOCATION_{attr}"
    unset(name)
    setattr(settings, name, 0)
    assert getattr(app_settings, attr) == 0
    setattr(settings, name, -1)
    with pytest.raises(ImproperlyConfigured, match=rf"^{name} must be .*, got -1$"):
        getattr(app_settings, attr)


@pytest.mark.parametrize("attr", ["IDLE_TIMEOUT", "MAX_LIFETIME"])
def test_session_limits_are_off_with_none_and_read_from_the_environment(
    attr: str, settings: Any, unset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"REVOCATION_{attr}"
    unset(name)
    setattr(settings, name, None)
    assert getattr(app_settings, attr) == 0
    delattr(settings, name)
    monkeypatch.setenv(name, "900")
    assert getattr(app_settings, attr) == 900


def test_a_boolean_is_not_an_integer(settings: Any, unset: Any) -> None:
    unset("REVOCATION_BATCH_SIZE")
    settings.REVOCATION_BATCH_SIZE = True
    with pytest.raises(ImproperlyConfigured, match="REVOCATION_BATCH_SIZE"):
        _ = app_settings.BATCH_SIZE


def test_integers_from_the_environment_are_parsed(
    unset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    unset("REVOCATION_BATCH_SIZE")
    monkeypatch.setenv("REVOCATION_BATCH_SIZE", " 250 ")
    assert app_settings.BATCH_SIZE == 250


def test_django_settings_win_over_the_environment(
    settings: Any, unset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    unset("REVOCATION_BATCH_SIZE")
    monkeypatch.setenv("REVOCATION_BATCH_SIZE", "250")
    settings.REVOCATION_BATCH_SIZE = 7
    assert app_settings.BATCH_SIZE == 7


def test_defaults(unset: Any) -> None:
    defaults = {
        "BATCH_SIZE": 1000,
        "SWEEP_INTERVAL": 15,
        "STALL_TIMEOUT": 60,
        "PAGE_BUDGET_SECONDS": 20,
        "VISIBILITY_TIMEOUT": 3600,
        "TOUCH_INTERVAL": 300,
        "TRUSTED_PROXY_COUNT": 0,
        "MAX_SESSIONS_PER_USER": 0,
        "MAX_SESSIONS_POLICY": "revoke_oldest",
        "SCOPES": {},
        "REQUEST_RETENTION_DAYS": 90,
        "MAINTENANCE_BATCH_SIZE": 10000,
        "LOCK_BACKEND": "auto",
        "OWNER_CHECK_ROWS": 20000,
        "API_WRITE_RATE": "20/min",
        "API_READ_RATE": "600/min",
        "IDLE_TIMEOUT": 0,
        "MAX_LIFETIME": 0,
    }
    for attr in defaults:
        unset(f"REVOCATION_{attr}")
    assert {attr: getattr(app_settings, attr) for attr in defaults} == defaults


def test_scopes_from_the_environment_are_parsed(
    unset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    unset("REVOCATION_SCOPES")
    monkeypatch.setenv(
        "REVOCATION_SCOPES", "org=tests.orgs.scopes.org_members, gated = tests.scopes.gated"
    )
    assert app_settings.SCOPES == {
        "org": "tests.orgs.scopes.org_members",
        "gated": "tests.scopes.gated",
    }
    monkeypatch.setenv("REVOCATION_SCOPES", "")
    assert app_settings.SCOPES == {}


@pytest.mark.parametrize(
    "raw", ["tests.scopes.gated", "org=", "=tests.scopes.gated", "org=a.b,,team=c.d"]
)
def test_malformed_scopes_in_the_environment_name_the_setting(
    raw: str, unset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    unset("REVOCATION_SCOPES")
    monkeypatch.setenv("REVOCATION_SCOPES", raw)
    with pytest.raises(ImproperlyConfigured, match=r"^REVOCATION_SCOPES must be .*, got '"):
        _ = app_settings.SCOPES


@pytest.mark.parametrize("value", [["org"], {"org": 42}, {"": "tests.scopes.gated"}])
def test_scopes_in_settings_must_map_names_to_dotted_paths(
    value: Any, settings: Any, unset: Any
) -> None:
    unset("REVOCATION_SCOPES")
    settings.REVOCATION_SCOPES = value
    with pytest.raises(ImproperlyConfigured, match=r"^REVOCATION_SCOPES must be "):
        _ = app_settings.SCOPES


@pytest.mark.parametrize("attr", ["LOCK_BACKEND", "API_WRITE_RATE", "MAX_SESSIONS_POLICY"])
def test_a_text_setting_must_be_a_string(attr: str, settings: Any, unset: Any) -> None:
    name = f"REVOCATION_{attr}"
    unset(name)
    setattr(settings, name, 5)
    with pytest.raises(ImproperlyConfigured, match=rf"^{name} must be a string, got 5$"):
        getattr(app_settings, attr)


def test_settings_are_reread_on_every_access(settings: Any, unset: Any) -> None:
    unset("REVOCATION_BATCH_SIZE")
    settings.REVOCATION_BATCH_SIZE = 3
    assert app_settings.BATCH_SIZE == 3
    settings.REVOCATION_BATCH_SIZE = 4
    assert app_settings.BATCH_SIZE == 4


def test_a_reader_without_django_settings_sees_the_environment_only(
    settings: Any, unset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What config/settings/base.py uses while the settings are still being built.
    unset("REVOCATION_VISIBILITY_TIMEOUT")
    settings.REVOCATION_VISIBILITY_TIMEOUT = 5
    environment = AppSettings(project_settings=None)
    assert environment.VISIBILITY_TIMEOUT == 3600
    monkeypatch.setenv("REVOCATION_VISIBILITY_TIMEOUT", "7200")
    assert environment.VISIBILITY_TIMEOUT == 7200


SWITCHES = {"NEW_SIGN_IN_EMAIL": False, "ADMIN_USER_INLINE": True}


@pytest.mark.parametrize(("attr", "default"), SWITCHES.items())
def test_switches_read_settings_and_the_environment(
    attr: str, default: bool, settings: Any, unset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"REVOCATION_{attr}"
    unset(name)
    assert getattr(app_settings, attr) is default
    for raw, value in [("1", True), (" Yes", True), ("on", True), ("false", False), ("0", False)]:
        monkeypatch.setenv(name, raw)
        assert getattr(app_settings, attr) is value
    monkeypatch.setenv(name, "maybe")
    with pytest.raises(ImproperlyConfigured, match=rf"^{name} must be True or False, got 'maybe'$"):
        getattr(app_settings, attr)
    setattr(settings, name, not default)
    assert getattr(app_settings, attr) is (not default)
    setattr(settings, name, 1)  # a Python setting is a bool, not a number
    with pytest.raises(ImproperlyConfigured, match=rf"^{name} must be True or False, got 1$"):
        getattr(app_settings, attr)
