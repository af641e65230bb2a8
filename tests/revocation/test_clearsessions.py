"""`manage.py clearsessions` is ours: progress, a summary, engine notes, and clear errors."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.core.management import get_commands, load_command_class
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from revocation import engines
from revocation.checks import check_app_order
from revocation.models import UserSession
from tests.conftest import run_command

SUMMARY_KEYS = {
    "sessions_deleted",
    "mappings_pruned",
    "mappings_relinked",
    "requests_pruned",
    "requests_erased",
    "fences_pruned",
    "seconds",
    "skipped",
    "notes",
}


def run(*args: str) -> tuple[str, str]:
    """Run clearsessions; return (stdout, stderr)."""
    return run_command("clearsessions", *args)


def login(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return str(client.session.session_key)


def test_our_command_shadows_djangos() -> None:
    assert get_commands()["clearsessions"] == "revocation"
    command = load_command_class(get_commands()["clearsessions"], "clearsessions")
    assert type(command).__module__ == "revocation.management.commands.clearsessions"
    assert check_app_order() == []


def test_listing_revocation_after_sessions_is_reported(settings: Any) -> None:
    apps = [a for a in settings.INSTALLED_APPS if a != "revocation"]
    settings.INSTALLED_APPS = [*apps, "revocation"]
    [warning] = check_app_order()
    assert warning.id == "revocation.W003"
    assert "django.contrib.sessions" in warning.msg


@pytest.mark.django_db
def test_prints_progress_and_a_summary(make_user: Any) -> None:
    user = make_user()
    live = login(user)
    for _ in range(3):
        key = login(user)
        Session.objects.filter(pk=key).update(expire_date=timezone.now() - timedelta(days=1))

    out, err = run("--batch-size", "2")

    assert out.startswith("Deleted 3 expired sessions, pruned 3 orphaned mappings")
    assert "expired sessions deleted: " in err
    assert list(Session.objects.values_list("pk", flat=True)) == [live]
    assert list(UserSession.objects.values_list("session_key", flat=True)) == [live]


@pytest.mark.django_db
def test_json_summary_is_the_last_stdout_line(make_user: Any) -> None:
    key = login(make_user())
    Session.objects.filter(pk=key).update(expire_date=timezone.now() - timedelta(days=1))

    out, _ = run("--json")

    summary = json.loads(out.strip().splitlines()[-1])
    assert set(summary) == SUMMARY_KEYS
    assert (summary["sessions_deleted"], summary["mappings_pruned"]) == (1, 1)
    assert summary["skipped"] is False


@pytest.mark.django_db
def test_cache_engine_explains_there_is_nothing_to_delete_and_prunes(
    make_user: Any, settings: Any
) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    user = make_user()
    live, gone = login(user), login(user)
    engines.store_class()().delete(gone)

    out, err = run()

    assert "SESSION_ENGINE is cache" in err
    assert "nothing to delete" in err
    assert out.startswith("Deleted 0 expired sessions, pruned 1 orphaned mappings")
    assert list(UserSession.objects.values_list("session_key", flat=True)) == [live]


@pytest.mark.django_db
def test_signed_cookies_engine_explains_there_is_nothing_server_side(settings: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    _, err = run()
    assert "nothing to clear server-side" in err


@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_bad_batch_size_is_named(value: str) -> None:
    with pytest.raises(CommandError, match=f"--batch-size must be a positive integer, got {value}"):
        run("--batch-size", value)


@pytest.mark.django_db
def test_an_engine_that_cannot_clear_fails_like_djangos_command(settings: Any) -> None:
    settings.SESSION_ENGINE = "tests.no_clear_expired"
    with pytest.raises(CommandError) as error:
        run()
    assert str(error.value) == (
        "Session engine 'tests.no_clear_expired' doesn't support clearing expired sessions."
    )


@pytest.mark.django_db
def test_the_file_engine_reports_the_sessions_it_cleared(settings: Any, tmp_path: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.file"
    settings.SESSION_FILE_PATH = str(tmp_path)
    store = engines.store_class()
    for expiry in (-10, -10, 3600):
        session = store()
        session["x"] = 1
        session.set_expiry(expiry)
        session.save()

    out, _ = run("--json")

    assert json.loads(out.strip().splitlines()[-1])["sessions_deleted"] == 2
    assert len(list(tmp_path.iterdir())) == 1
