"""Helpers for tests that run real Celery workers and real servers, and a GeoIP database writer."""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.core.cache import caches
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
    scheme, default_user, default_port = (
        ("mysql", "root", 3306) if connection.vendor == "mysql" else ("postgres", "postgres", 5432)
    )
    user = db.get("USER") or default_user
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or default_port
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"{scheme}://{user}{password}@{host}:{port}/{db['NAME']}"


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

    # No cluster chatter: the quickest worker to start.
    options: tuple[str, ...] = ("--without-gossip", "--without-mingle", "--without-heartbeat")
    # One pool process unless a test asks for more.
    concurrency = 1

    def __init__(
        self, log: Path, *, beat: bool = False, concurrency: int | None = None, **env: str
    ) -> None:
        self.log = log
        self.beat = beat
        self.concurrency = concurrency or self.concurrency
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
                "--concurrency",
                str(self.concurrency),
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

    def pool_processes(self) -> list[int]:
        """Return the pids of the worker's pool processes (its children)."""
        assert self.process is not None
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # "pid (comm) state ppid ...": comm may hold spaces, so split after ")".
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # exited meanwhile
            if int(fields[1]) == self.process.pid:
                children.append(int(stat.parent.name))
        return children

    def tasks_received(self, name: str = "revocation.process_request") -> int:
        """Return how many deliveries of task `name` the worker has logged."""
        log = self.log.read_text(errors="replace")
        return sum(1 for line in log.splitlines() if f"{name}[" in line and "received" in line)


class ProcfileWorker(Worker):
    """A Worker with the Procfile's options: two pool processes, gossip, mingle, heartbeats.

    With two processes the consumer keeps fetching while a task runs, and gossip and
    remote control hold broker channels of their own: what a broker outage meets.
    """

    options = ()
    concurrency = 2


def hold_page(gate: Path, page: int) -> None:
    """Make the job of a request just accepted on scope ("gated", gate) block on `page`."""
    calls = gate.with_suffix(".calls")
    # Whatever calls accepting the request made, the job makes one to count the
    # users, then one per page (tests.scopes.gated counts them all).
    made = int(calls.read_text()) if calls.exists() else 0
    gate.write_text(str(made + 1 + page))


def free_port() -> int:
    """Return a TCP port that is free on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def uses_rabbitmq() -> bool:
    """Return whether this test run's broker is RabbitMQ (CELERY_BROKER_URL amqp://...)."""
    return str(settings.CELERY_BROKER_URL).startswith(("amqp://", "amqps://", "pyamqp://"))


def broker_url_at(port: int) -> str:
    """Return the URL of a broker of this run's kind listening on `port` of the loopback."""
    if not uses_rabbitmq():
        return f"redis://127.0.0.1:{port}/0"
    # This run's RabbitMQ user and vhost, on another port.
    parts = urlsplit(str(settings.CELERY_BROKER_URL))
    credentials = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@127.0.0.1:{port}"))


def purge_run_queue() -> None:
    """Drop the messages on this run's queue: tasks of earlier tests that no worker took."""
    from celery import current_app

    with current_app.connection_for_write() as connection:
        queue = current_app.amqp.queues[settings.CELERY_TASK_DEFAULT_QUEUE]
        bound = queue.bind(connection.default_channel)
        # RabbitMQ refuses to purge a queue nobody declared yet (the run's first test).
        bound.declare()
        bound.purge()


def delete_run_queue() -> None:
    """Delete this run's queue with what is left on it (tasks no worker took)."""
    from celery import current_app

    with current_app.connection_for_write() as connection:
        queue = current_app.amqp.queues[settings.CELERY_TASK_DEFAULT_QUEUE]
        queue.bind(connection.default_channel).delete()


def ready_messages(broker_url: str) -> int:
    """Return how many messages wait on this run's queue at `broker_url`."""
    from kombu import Connection

    with Connection(broker_url) as connection:
        channel: Any = connection.default_channel  # kombu types it as the minimal StdChannel
        declared = channel.queue_declare(queue=settings.CELERY_TASK_DEFAULT_QUEUE, passive=True)
        return int(declared.message_count)


class PrivateBroker:
    """A broker of this run's kind that one test may take down and bring back.

    On Redis, a redis-server of the test's own. The shared RabbitMQ server cannot be
    stopped: its clients reach it through a TCP proxy of the test's own instead, and
    cutting the proxy (every connection closed, new ones refused) is what a broker
    outage looks like to them.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = broker_url_at(self.port)
        self.kind = "amqp" if uses_rabbitmq() else "redis"
        self._redis: subprocess.Popen[bytes] | None = None
        self._proxy: _Proxy | None = None

    def start(self) -> None:
        """Start serving on `port` (a Redis server starts empty)."""
        if self.kind == "amqp":
            server = urlsplit(str(settings.CELERY_BROKER_URL))
            self._proxy = _Proxy(self.port, (server.hostname or "127.0.0.1", server.port or 5672))
        else:
            self._redis = subprocess.Popen(
                [
                    "redis-server",
                    *("--port", str(self.port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        wait_until(lambda: _port_open(self.port), timeout=30, what="the private broker")

    def stop(self) -> None:
        """Take the broker down: every client connection drops, new ones are refused."""
        if self._proxy is not None:
            self._proxy.close()
            self._proxy = None
        if self._redis is not None:
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "shutdown", "nosave"],
                check=False,
                capture_output=True,
            )
            self._redis.wait(timeout=30)
            self._redis = None
        wait_until(lambda: not _port_open(self.port), timeout=30, what="the broker to stop")


@contextmanager
def private_broker(directory: Path) -> Iterator[PrivateBroker]:
    """Yield a PrivateBroker, empty and down until started; it is stopped on the way out."""
    broker = PrivateBroker(directory)
    if broker.kind == "amqp":
        # The shared server holds this run's queue: drop what earlier tests left there.
        purge_run_queue()
    try:
        yield broker
    finally:
        if broker._proxy is not None or broker._redis is not None:
            broker.stop()


# The private broker of the Redis legs is a redis-server; RabbitMQ's is a proxy.
needs_private_broker = pytest.mark.skipif(
    not uses_rabbitmq() and shutil.which("redis-server") is None, reason="needs redis-server"
)


class _Proxy:
    """Forward TCP connections from a loopback port to `upstream`, until closed."""

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", port))
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Close the listener and every connection through the proxy."""
        self.closing.set()
        self.thread.join(timeout=10)

    def _serve(self) -> None:
        # One thread, one selector: each readable socket's bytes go to its peer.
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        peers: dict[socket.socket, socket.socket] = {}
        try:
            while not self.closing.is_set():
                for key, _ in selector.select(timeout=0.1):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self.listener:
                        self._accept(selector, peers)
                    elif sock in peers and not self._forward(sock, peers[sock]):
                        # One end closed: close the other too, as a broker going away does.
                        peer = peers.pop(sock)
                        del peers[peer]
                        for end in (sock, peer):
                            selector.unregister(end)
                            end.close()
        finally:
            for end in [self.listener, *peers]:
                end.close()
            selector.close()

    def _accept(
        self, selector: selectors.BaseSelector, peers: dict[socket.socket, socket.socket]
    ) -> None:
        client = self.listener.accept()[0]
        try:
            server = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        client.settimeout(10)
        peers[client], peers[server] = server, client
        selector.register(client, selectors.EVENT_READ)
        selector.register(server, selectors.EVENT_READ)

    @staticmethod
    def _forward(source: socket.socket, target: socket.socket) -> bool:
        """Pass what `source` sent on to `target`; return False once either end closed."""
        try:
            data = source.recv(65536)
            if data:
                target.sendall(data)
        except OSError:
            return False
        return bool(data)


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


@contextmanager
def black_hole() -> Iterator[int]:
    """Listen on a free port, accept every connection and never answer; yields the port.

    What a broker behind a dead route or a hung process looks like to a client: the
    TCP connection opens, then nothing comes back.
    """
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=10)
        for conn in held:
            conn.close()
        server.close()


def session_key(client: Any) -> str:
    """Return the session key in a test client's cookie."""
    return str(client.cookies[settings.SESSION_COOKIE_NAME].value)


def run_pending_requests() -> None:
    """Carry out every pending revocation request in this process, as a worker would."""
    from revocation import services
    from revocation.models import RevocationRequest

    for pk in RevocationRequest.objects.filter(state="pending").values_list("pk", flat=True):
        services.run_request(pk, budget_seconds=60)


def copy_of(session_key: str) -> Any:
    """Return a loaded copy of the stored session, as one request would hold it."""
    from revocation import engines

    store = engines.store_class()(session_key)
    store.items()  # loads it, as the request's first read would
    return store


def link_key(client: Any) -> str:
    """Return the key of the mapping row of the session a test client holds, on any engine."""
    from revocation import engines

    key = engines.link_key(client.session)
    assert key, "the client's session has no mapping key"
    return key


def row_of(client: Any) -> Any:
    """Return the mapping row (UserSession) of the session a test client holds."""
    from revocation.models import UserSession

    return UserSession.objects.get(session_key=link_key(client))


def session_leftovers(key: str) -> list[str]:
    """Return where session `key` is still stored: table row, cached copy, mapping."""
    from revocation import engines
    from revocation.models import UserSession

    found = []
    if (
        engines.has_table()
        and engines.session_model()._default_manager.filter(session_key=key).exists()
    ):
        found.append("row")
    prefix = engines.current().cache_key_prefix
    if prefix is not None:
        # The engine's own key (SessionStore.cache_key) in the engine's own cache.
        if caches[settings.SESSION_CACHE_ALIAS].has_key(prefix + key):
            found.append("cached copy")
    elif not engines.has_table() and engines.store_class()().exists(key):
        found.append("stored")  # an engine with neither table nor cache prefix
    if UserSession.objects.filter(session_key=key).exists():
        found.append("mapping")
    return found


def assert_sessions_gone(keys: Iterable[str]) -> None:
    """Fail unless every session in `keys` is gone from storage: rows, cached copies, mappings.

    A refused cookie proves nothing about the job: the fence refuses it first. Call this
    before any request with those cookies (a request would flush the session itself).
    """
    keys = list(keys)
    assert keys and all(keys), f"no session keys to check: {keys}"
    left = {key: where for key in keys if (where := session_leftovers(key))}
    assert not left, f"revoked sessions still stored: {left}"


def assert_sessions_kept(keys: Iterable[str]) -> None:
    """Fail unless every session in `keys` is still stored and still mapped to its user."""
    from revocation import engines
    from revocation.models import UserSession

    keys = list(keys)
    assert keys and all(keys), f"no session keys to check: {keys}"
    store = engines.store_class()()
    lost = [key for key in keys if not store.exists(key)]
    unmapped = [key for key in keys if not UserSession.objects.filter(session_key=key).exists()]
    assert not lost and not unmapped, f"kept sessions gone: {lost}, unmapped: {unmapped}"


def lock_waiters() -> int | None:
    """Return how many connections to the test database wait for a lock (None: unknown).

    PostgreSQL only: SQLite takes its one write lock at BEGIN (IMMEDIATE), out of sight.
    """
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND a.datname = current_database()"
        )
        return int(cursor.fetchone()[0])


def write_geoip_database(
    path: Path, networks: Mapping[str, Mapping[str, Any]], edition: str = "GeoLite2-City"
) -> Path:
    """Write a tiny MaxMind database at `path`, each network to its record; return `path`.

    Written by the test (mmdb-writer), never downloaded. A record is a GeoIP2 City one,
    e.g. {"country": {"iso_code": "DE", "names": {"en": "Germany"}}, "city": {"names":
    {"en": "Berlin"}}}; a "...-Country" edition keeps only its country.
    """
    mmdb_writer = pytest.importorskip("mmdb_writer", reason="needs mmdb-writer (dev dependency)")
    netaddr = pytest.importorskip("netaddr", reason="needs netaddr (dev dependency)")
    pytest.importorskip("geoip2", reason="needs geoip2 (dev dependency)")
    writer = mmdb_writer.MMDBWriter(
        ip_version=6, database_type=edition, languages=["en"], ipv4_compatible=True
    )
    for network, record in networks.items():
        data = {"country": record["country"]} if edition.endswith("Country") else dict(record)
        writer.insert_network(netaddr.IPSet([network]), data)
    writer.to_db_file(str(path))
    return path
