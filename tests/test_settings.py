"""Project settings: one environment reader, `.env` first, no side effects at import.

The local folders of the embedded default (database, broker, static files) are
created when Django starts (workers.apps), so a fresh clone with no var/ folder
runs every command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "config" / "settings" / "base.py"


def embedded_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """Return the environment of a child process on the embedded default in `var_dir`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
        and not k.startswith("REVOCATION_")
    }
    env.update(REVOCATION_VAR_DIR=str(var_dir), PYTHONPATH=str(ROOT), **extra)
    return env


def run_settings(base: Path, env: dict[str, str], names: list[str]) -> dict[str, object]:
    """Execute settings file `base` in a child process; return the values of `names`."""
    code = (
        "import json, runpy, sys; ns = runpy.run_path(sys.argv[1]); "
        "print(json.dumps({n: str(ns[n]) if n in ns else None for n in sys.argv[2:]}))"
        "; print(json.dumps(sorted(n for n in ns if n.startswith('REVOCATION_'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(base), *names],
        env=env,
        cwd=base.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    values, revocation = result.stdout.strip().splitlines()[-2:]
    return {**json.loads(values), "REVOCATION_*": json.loads(revocation)}


def test_importing_the_settings_creates_no_folder(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    values = run_settings(BASE, embedded_env(var_dir), ["VAR_DIR", "CELERY_BROKER_URL"])
    assert values["VAR_DIR"] == str(var_dir)
    assert values["CELERY_BROKER_URL"] == "filesystem://"
    assert not var_dir.exists()


def test_dotenv_is_read_before_anything_else(tmp_path: Path) -> None:
    # A copy of the project whose .env names the local folder.
    settings_dir = tmp_path / "config" / "settings"
    settings_dir.mkdir(parents=True)
    shutil.copy(BASE, settings_dir / "base.py")
    (tmp_path / ".env").write_text(
        f"REVOCATION_VAR_DIR={tmp_path / 'from-dotenv'}\nREVOCATION_VISIBILITY_TIMEOUT=7200\n"
    )
    env = embedded_env(tmp_path)
    del env["REVOCATION_VAR_DIR"]
    env["REDIS_URL"] = "redis://127.0.0.1:1/0"  # only read, never connected to
    values = run_settings(
        settings_dir / "base.py", env, ["VAR_DIR", "CELERY_BROKER_TRANSPORT_OPTIONS"]
    )
    assert values["VAR_DIR"] == str(tmp_path / "from-dotenv")
    assert "'visibility_timeout': 7200" in str(values["CELERY_BROKER_TRANSPORT_OPTIONS"])


def test_the_app_defaults_are_not_copied_into_the_project_settings(tmp_path: Path) -> None:
    # One source: revocation/app_settings.py (the environment reaches it directly).
    values = run_settings(BASE, embedded_env(tmp_path / "var"), [])
    assert values["REVOCATION_*"] == []


def test_a_bad_integer_in_the_environment_names_the_setting(tmp_path: Path) -> None:
    env = embedded_env(
        tmp_path / "var", REDIS_URL="redis://127.0.0.1:1/0", REVOCATION_VISIBILITY_TIMEOUT="1h"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import runpy; runpy.run_path({str(BASE)!r})"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.endswith("REVOCATION_VISIBILITY_TIMEOUT must be a positive integer, got '1h'")


def test_a_fresh_clone_migrates_and_publishes_with_no_var_folder(tmp_path: Path) -> None:
    var_dir = tmp_path / "fresh" / "var"
    env = embedded_env(var_dir, DJANGO_SETTINGS_MODULE="config.settings.local")
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert (var_dir / "db.sqlite3").is_file()
    # A web process publishes to the broker folder the worker reads.
    publish = (
        "import django; django.setup(); from config.celery_app import app; "
        "app.send_task('revocation.sweep_outbox', queue='fresh-clone-check')"
    )
    result = subprocess.run(
        [sys.executable, "-c", publish],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert list((var_dir / "broker").glob("*.fresh-clone-check.msg"))
    assert (var_dir / "static").is_dir()


def test_the_embedded_database_writes_ahead(tmp_path: Path) -> None:
    import django

    if django.VERSION < (5, 1):
        pytest.skip("Django 4.2 has no SQLite init_command: the rollback journal stays")
    code = (
        "import django; django.setup(); from django.db import connection; "
        "c = connection.cursor(); print(c.execute('PRAGMA journal_mode').fetchone()[0], "
        "c.execute('PRAGMA synchronous').fetchone()[0])"
    )
    env = embedded_env(tmp_path, DJANGO_SETTINGS_MODULE="config.settings.local")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["wal", "1"], result.stderr  # 1: NORMAL
