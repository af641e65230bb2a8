"""A fresh `startproject`, the built wheel and the README's steps alone revoke a session.

The README section "Adding it to an existing Django project" is the contract: this
test reads its code blocks and applies them as they are (a python block starting
`# mysite/<file>` is appended to that file or creates it; `sh` lines are run), so a
step missing there fails here. Not a README step: the leg's servers. The test
appends its own database, broker and cache to settings.py after the README's lines.
Slow (30-60 s: a wheel build, a venv, pip and a real worker); marked `worker`.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import environ
import pytest

pytestmark = pytest.mark.worker

ROOT = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).with_name("fresh_project_driver.py")
SECTION = "## Adding it to an existing Django project"
PROJECT = "mysite"
DISTRIBUTION = "django-session-revocation"
# What `python -m build` reads: the app and the packaging files, nothing of the service.
BUILD_INPUTS = ("pyproject.toml", "MANIFEST.in", "README.md", "revocation")
# README steps left out on purpose: one revocation needs no beat.
SKIPPED_STEPS = (f"celery -A {PROJECT} beat",)
BLOCK = re.compile(r"^(?P<indent> *)```(?P<lang>\w*)\n(?P<code>.*?)^(?P=indent)```", re.M | re.S)
# This repository's own settings and interpreter: the fresh project must not see them.
FOREIGN_ENV = ("DJANGO_", "CELERY_", "REVOCATION_", "DATABASE_URL", "REDIS_URL", "PYTHON")


@dataclass
class Readme:
    """The section's steps: files to write and commands, in the README's order."""

    files: list[tuple[str, str]] = field(default_factory=list)
    installs: list[list[str]] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)
    workers: list[list[str]] = field(default_factory=list)

    @classmethod
    def read(cls) -> Readme:
        """Parse the section's code blocks; a step this test cannot apply fails it."""
        readme = cls()
        section = (ROOT / "README.md").read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]
        for match in BLOCK.finditer(section):
            code = textwrap.dedent(match["code"])
            if match["lang"] == "python":
                name = re.fullmatch(rf"# {PROJECT}/([\w.]+\.py)", code.splitlines()[0])
                assert name, f"a python block must start with `# {PROJECT}/<file>`: {code[:80]!r}"
                readme.files.append((name[1], code))
            elif match["lang"] == "sh":
                for line in code.splitlines():
                    if line.strip() and not line.strip().startswith(SKIPPED_STEPS):
                        readme.add_command(shlex.split(line, comments=True))
        assert readme.installs, "the README does not say what to pip install"
        assert len(readme.workers) == 1, f"the README should start one worker: {readme.workers}"
        return readme

    def add_command(self, command: list[str]) -> None:
        """File a command of an `sh` block under the step it is."""
        if command[:2] == ["pip", "install"]:
            self.installs.append(command[2:])
        elif command[:2] == ["python", "manage.py"]:
            self.commands.append(command[1:])
        elif command[:3] == ["celery", "-A", PROJECT] and "worker" in command:
            self.workers.append(command[1:])
        else:
            raise AssertionError(f"a README step this test does not know: {shlex.join(command)}")


@dataclass
class Leg:
    """This leg's servers as the fresh project sees them: settings lines and driver packages."""

    vendor: str
    settings: str
    packages: list[str]


@dataclass
class Venv:
    """A clean virtual environment, and the environment variables of its processes."""

    path: Path
    env: dict[str, str]

    def run(self, args: list[Any], cwd: Path, timeout: int = 300, **env: str) -> None:
        """Run a command to completion; fail with its output if it exits non-zero."""
        args = [str(arg) for arg in args]
        done = subprocess.run(
            args,
            cwd=cwd,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, (
            f"{shlex.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )

    def pip_install(self, *requirements: str) -> None:
        """Install from this machine's configured package index."""
        self.run(
            [self.path / "bin/python", "-m", "pip", "install", "--quiet", *requirements],
            self.path,
            600,
        )

    @contextmanager
    def background(self, args: list[Any], cwd: Path, log: Path) -> Iterator[None]:
        """Run a command in the background, stopped (with its children) at exit."""
        with log.open("wb") as output:
            process = subprocess.Popen(
                [str(arg) for arg in args],
                cwd=cwd,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            yield
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def build_wheel(tmp: Path) -> Path:
    """Build the wheel from a copy of the tree, so no build/ or egg-info lands in it."""
    source = tmp / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", tmp / "dist", source],
        capture_output=True,
        check=True,
    )
    (wheel,) = (tmp / "dist").glob("*.whl")
    return wheel


def make_venv(tmp: Path) -> Venv:
    """Create a clean venv whose processes see none of this repository's settings."""
    path = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", path], check=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(FOREIGN_ENV)}
    env.update(PATH=f"{path / 'bin'}{os.pathsep}{env['PATH']}", VIRTUAL_ENV=str(path))
    return Venv(path, env)


@contextmanager
def leg_database() -> Iterator[Leg]:
    """Yield a private database on this leg's server (dropped after), or startproject's SQLite."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres", "mysql")):
        # startproject's own SQLite file, in the temporary folder already.
        yield Leg("sqlite", "", [])
        return
    config = environ.Env.db_url_config(url)
    name = f"{config['NAME']}_fresh_project"
    private = {**config, "NAME": name}
    if url.startswith("postgres"):
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        create = f'CREATE DATABASE "{name}"'
        leg = Leg("postgresql", f"DATABASES = {{'default': {private!r}}}\n", ["psycopg[binary]"])
    else:
        drop = f"DROP DATABASE IF EXISTS `{name}`"
        create = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
        private["OPTIONS"] = {"charset": "utf8mb4"}
        # As config/settings/base.py does: PyMySQL needs no C compiler.
        driver = "import pymysql\n\npymysql.install_as_MySQLdb()\n"
        leg = Leg("mysql", driver + f"DATABASES = {{'default': {private!r}}}\n", ["PyMySQL"])
    execute(config, [drop, create])
    try:
        yield leg
    finally:
        execute(config, [drop])


def execute(config: dict[str, Any], statements: list[str]) -> None:
    """Run statements on the server of `config`, outside its database."""
    server = {"user": config["USER"], "host": config["HOST"], "port": config["PORT"]}
    if config["ENGINE"].endswith("postgresql"):
        import psycopg

        password = config["PASSWORD"] or None
        with psycopg.connect(dbname="postgres", password=password, autocommit=True, **server) as db:
            for statement in statements:
                db.execute(statement.encode())
        return
    import pymysql  # type: ignore[import-untyped]

    with pymysql.connect(password=config["PASSWORD"], **server) as db, db.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


@contextmanager
def private_queue() -> Iterator[str]:
    """Yield a queue name of this run's own; on RabbitMQ, delete the queue afterwards."""
    token = f"fresh-project-{secrets.token_hex(4)}"
    yield token
    broker_url = os.environ.get("CELERY_BROKER_URL", "")
    if broker_url.startswith("amqp"):
        # A durable queue outlives the run on RabbitMQ (Redis drops an empty list).
        from kombu import Connection

        with Connection(broker_url) as connection:
            connection.default_channel.queue_delete(token)  # type: ignore[attr-defined]


def leg_servers(tmp: Path, token: str) -> str:
    """Return settings lines for this leg's broker and cache, on the queue and prefix `token`."""
    lines = f"CELERY_TASK_DEFAULT_QUEUE = {token!r}\n"
    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url:
        cache = {
            "BACKEND": "revocation.cache.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": token,
        }
        # The leg's broker: RabbitMQ when it names one, else the same Redis.
        broker_url = os.environ.get("CELERY_BROKER_URL", "") or redis_url
        return lines + f"CELERY_BROKER_URL = {broker_url!r}\nCACHES = {{'default': {cache!r}}}\n"
    broker = tmp / "broker"
    for folder in (broker / "processed", broker / "control"):
        folder.mkdir(parents=True)
    options = {
        "data_folder_in": str(broker),
        "data_folder_out": str(broker),
        "processed_folder": str(broker / "processed"),
        "control_folder": str(broker / "control"),
        "polling_interval": 0.2,
    }
    cache = {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(tmp / "cache"),
    }
    return lines + (
        "CELERY_BROKER_URL = 'filesystem://'\n"
        f"CELERY_BROKER_TRANSPORT_OPTIONS = {options!r}\n"
        f"CACHES = {{'default': {cache!r}}}\n"
    )


def start_project(venv: Venv, tmp: Path, readme: Readme, leg: Leg, queue: str) -> Path:
    """startproject, write the README's files, then append this leg's servers to settings.py."""
    venv.run([venv.path / "bin/django-admin", "startproject", PROJECT], tmp)
    site = tmp / PROJECT
    for name, code in readme.files:
        target = site / PROJECT / name
        target.write_text((target.read_text() if target.exists() else "") + "\n" + code)
    settings = site / PROJECT / "settings.py"
    servers = leg_servers(tmp, queue) + leg.settings
    settings.write_text(
        f"{settings.read_text()}\n# The test's servers, not a README step.\n{servers}"
    )
    return site


def test_a_fresh_project_following_the_readme_logs_out_other_sessions(tmp_path: Path) -> None:
    """pip install the wheel into a startproject, apply the README: revoke, then clearsessions."""
    readme = Readme.read()
    wheel = build_wheel(tmp_path)
    # The translations ship compiled (`make` compiles them; a bare pytest run, conftest).
    catalogues = {f"revocation/locale/{lang}/LC_MESSAGES/django.mo" for lang in ("de", "fr", "es")}
    assert catalogues <= set(zipfile.ZipFile(wheel).namelist())
    venv = make_venv(tmp_path)
    for requirements in readme.installs:
        venv.pip_install(
            *(re.sub(rf"^{DISTRIBUTION}(?=\[|$)", str(wheel), r) for r in requirements)
        )
    python = venv.path / "bin/python"

    with leg_database() as leg, private_queue() as queue:
        if leg.packages:
            venv.pip_install(*leg.packages)
        site = start_project(venv, tmp_path, readme, leg, queue)
        # A step left out or misplaced (middleware, app order) is a system check warning.
        venv.run([python, "manage.py", "check", "--fail-level", "WARNING"], site)
        for command in readme.commands:
            venv.run([python, *command], site)
        shutil.copy2(DRIVER, site / DRIVER.name)
        log = tmp_path / "worker.log"
        with venv.background([venv.path / "bin/celery", *readme.workers[0]], site, log):
            try:
                venv.run(
                    [python, DRIVER.name],
                    site,
                    DJANGO_SETTINGS_MODULE=f"{PROJECT}.settings",
                    FRESH_PROJECT_VENDOR=leg.vendor,
                )
            except AssertionError as failure:
                raise AssertionError(f"{failure}\nworker log:\n{log.read_text()[-4000:]}") from None
        venv.run([python, "manage.py", "clearsessions"], site)
