"""Helpers for tests that run real Celery workers and real servers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def wait_until(
    predicate: Callable[[], Any], *, timeout: float = 60, interval: float = 0.1, what: str = ""
) -> Any:
    """Return the first truthy value of `predicate()`, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def database_url() -> str:
    """Return a DATABASE_URL for the test database this process is using."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    """Return the environment of a child process that shares this test run's state."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=database_url(),
        CELERY_TASK_DEFAULT_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        SESSION_ENGINE=settings.SESSION_ENGINE,
        CACHE_KEY_PREFIX=settings.CACHES["default"].get("KEY_PREFIX", ""),
        PYTHONPATH=str(ROOT),
    )
    for name in ("REVOCATION_BATCH_SIZE", "REVOCATION_SCOPES", "REVOCATION_STALL_TIMEOUT"):
        if hasattr(settings, name) and name not in extra:
            value = getattr(settings, name)
            env[name] = (
                ",".join(f"{k}={v}" for k, v in value.items())
                if isinstance(value, dict)
                else str(value)
            )
    env.update(extra)
    return env


class Worker:
    """A real `celery -A config worker` process on this test run's queue and database."""

    # One pool process and no cluster chatter: the quickest worker to start.
    options: tuple[str, ...] = (
        "--concurrency",
        "1",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    )

    def __init__(self, log: Path, *, beat: bool = False, **env: str) -> None:
        self.log = log
        self.beat = beat
        self.env = subprocess_env(**env)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        """Start the worker and wait until it consumes."""
        self.log.write_bytes(b"")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel",
                "INFO",
                *self.options,
                "-Q",
                self.env["CELERY_TASK_DEFAULT_QUEUE"],
                "-n",
                f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
                *(
                    [
                        "-B",
                        # Not -S: on `celery worker` that is --statedb, a file in the cwd.
                        "--scheduler",
                        "django_celery_beat.schedulers:DatabaseScheduler",
                        "-s",
                        str(self.log.with_suffix(".beat")),
                    ]
                    if self.beat
                    else []
                ),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(
            lambda: b" ready." in self.log.read_bytes() or self.process.poll() is not None,  # type: ignore[union-attr]
            timeout=60,
            what="the worker to be ready",
        )
        assert self.process.poll() is None, self.log.read_text()
        return self

    def kill(self) -> None:
        """SIGKILL the worker and its pool children, as a crash would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


class ProcfileWorker(Worker):
    """A Worker with the Procfile's options: two pool processes, gossip, mingle, heartbeats.

    With two processes the consumer keeps fetching while a task runs, and gossip and
    remote control hold broker channels of their own: what a broker outage meets.
    """

    options = ("--concurrency", "2")


def free_port() -> int:
    """Return a TCP port that is free on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def private_redis(directory: Path, port: int) -> Iterator[Callable[[], None]]:
    """Run a redis-server of our own on `port`; yields a function that (re)starts it."""
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        processes.append(
            subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(directory),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_until(lambda: _port_open(port), timeout=30, what="private redis")

    try:
        yield start
    finally:
        for p in processes:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)


def stop_redis(port: int) -> None:
    """Shut the private redis-server on `port` down."""
    subprocess.run(
        ["redis-cli", "-p", str(port), "shutdown", "nosave"], check=False, capture_output=True
    )
    wait_until(lambda: not _port_open(port), timeout=30, what="private redis to stop")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def publish_to(broker_url: str, request_id: int) -> None:
    """Send the task of revocation request `request_id` to the broker at `broker_url`."""
    from config.celery_app import app
    from revocation.tasks import process_request

    with app.connection_for_write(broker_url) as conn:
        process_request.apply_async((request_id,), producer=conn.Producer())
