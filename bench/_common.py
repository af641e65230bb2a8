"""Shared helpers of the benchmarks: a dedicated database, a real worker, memory, stats.

Imported by the bench scripts only (`make bench` skips files starting with `_`).
Nothing here imports `tests/`.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
LOAD_CHUNK_ROWS = 10_000


# --- Environment ------------------------------------------------------------------


def database_url(server_url: str, name: str) -> str:
    """Return the URL of database `name` on the server of `server_url`."""
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def configure(
    *,
    tag: str,
    server_url: str,
    db_name: str,
    redis_url: str,
    session_engine: str = "db",
    batch_size: int | None = None,
) -> dict[str, str]:
    """Set the environment of this process (before django.setup()) and return it.

    Local-style settings with DEBUG off (a query log of 5,000-key statements is not
    what a deployment runs), a database of our own and a Celery queue of our own on
    the shared Redis, so no other worker consumes our messages.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "SECRET_KEY": "bench-only-not-secret",
        "DEBUG": "0",
        "DATABASE_URL": database_url(server_url, db_name),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_TASK_DEFAULT_QUEUE": f"revocation-bench-{tag}-{os.getpid()}",
        "SESSION_ENGINE": session_engine,
        # The bench process logs warnings only; the worker logs at INFO to its own file.
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    if batch_size is not None:
        env["REVOCATION_BATCH_SIZE"] = str(batch_size)
    os.environ.update(env)
    return env


def default_server() -> str:
    """Return the server to bench on: BENCH_PG_URL, else DATABASE_URL's, else local PostgreSQL.

    Only the server is taken from DATABASE_URL: the scripts create and drop a database
    of their own on it (--db-name), never the one the URL names.
    """
    url = os.environ.get("BENCH_PG_URL") or os.environ.get("DATABASE_URL", "")
    return url if urlsplit(url).scheme.startswith(("postgres", "mysql")) else DEFAULT_PG


def is_mysql(url: str | None = None) -> bool:
    """Return whether `url` (default: this process's DATABASE_URL) is MariaDB/MySQL."""
    return urlsplit(url or os.environ["DATABASE_URL"]).scheme.startswith("mysql")


def vendor(url: str) -> str:
    """Return the database family of `url`, for titles."""
    return "MariaDB/MySQL" if is_mysql(url) else "PostgreSQL"


def raw_connect(url: str, *, autocommit: bool = False) -> Any:
    """Return a psycopg or PyMySQL connection to `url`."""
    if not is_mysql(url):
        import psycopg

        return psycopg.connect(url, autocommit=autocommit)
    import pymysql  # type: ignore[import-untyped]  # no stubs in the lock file

    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=parts.path.lstrip("/") or None,
        charset="utf8mb4",
        autocommit=autocommit,
    )


@contextmanager
def connect() -> Iterator[Any]:
    """A raw connection to DATABASE_URL, committed on a clean exit, closed in any case."""
    conn = raw_connect(os.environ["DATABASE_URL"])
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def admin_execute(server_url: str, *statements: str) -> None:
    """Run `statements` in autocommit on the server of `server_url`, outside our database."""
    admin_db = "" if is_mysql(server_url) else "postgres"
    conn = raw_connect(database_url(server_url, admin_db), autocommit=True)
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


def drop_statement(server_url: str, name: str) -> str:
    """Return the statement dropping database `name`, other sessions or not."""
    if is_mysql(server_url):
        return f"DROP DATABASE IF EXISTS `{name}`"
    return f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'


def create_database(server_url: str, name: str) -> None:
    """Drop (if left over) and create database `name`."""
    create = f'CREATE DATABASE "{name}"'
    if is_mysql(server_url):
        create = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
    admin_execute(server_url, drop_statement(server_url, name), create)


def drop_database(server_url: str, name: str) -> None:
    """Drop database `name`, closing this process's Django connections first."""
    try:
        from django.db import connections

        connections.close_all()
    except Exception:  # noqa: S110 - Django may not be set up yet
        pass
    admin_execute(server_url, drop_statement(server_url, name))


def setup_django(*, migrate: bool = True) -> None:
    """django.setup() and, if asked, migrate the (empty) database quietly."""
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def forget_queue(redis_url: str, queue: str) -> int:
    """Delete our own queue's keys (never FLUSHDB: the Redis is shared); return keys removed."""
    import redis

    client = redis.Redis.from_url(redis_url)
    # kombu's Redis transport: one list per priority step, and the exchange's bindings.
    keys = [queue, *(f"{queue}\x06\x16{p}" for p in (1, 2, 3, 4, 5, 6, 7, 8, 9))]
    keys += [f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"]
    try:
        return int(client.delete(*keys))
    finally:
        client.close()


def queue_length(redis_url: str, queue: str) -> int:
    """Return how many messages wait in our queue."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.llen(queue))
    finally:
        client.close()


# --- Data ---------------------------------------------------------------------------


def session_blob(user_id: int) -> str:
    """A real encoded session of a logged-in user (about 220 bytes, as a login writes)."""
    from importlib import import_module

    from django.conf import settings

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    return store.encode(
        {
            "_auth_user_id": str(user_id),
            "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
            "_auth_user_hash": "f" * 64,
            "_revocation_auth_at": 1.7e9,
            "_revocation_seen_at": 1.7e9,
        }
    )


def truncate(cur: Any, tables: Sequence[str]) -> None:
    """Empty `tables` and restart their ids (PostgreSQL cascades to referencing tables)."""
    if not is_mysql():
        cur.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        return
    # InnoDB refuses to TRUNCATE a table that a foreign key references, empty or not.
    cur.execute("SET foreign_key_checks = 0")
    for table in tables:
        cur.execute(f"TRUNCATE TABLE {table}")
    cur.execute("SET foreign_key_checks = 1")


def bulk_load(cur: Any, table: str, columns: str, rows: Iterable[Sequence[object]]) -> None:
    """Load `rows` into `table` (`columns` comma-separated): COPY, or multi-row INSERTs."""
    if not is_mysql():
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    # PyMySQL's executemany folds INSERT ... VALUES into multi-row statements (~1 MB each).
    marks = ", ".join(["%s"] * len(columns.split(",")))
    insert = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
    remaining = iter(rows)
    while chunk := list(itertools.islice(remaining, LOAD_CHUNK_ROWS)):
        cur.executemany(insert, chunk)


@contextmanager
def indexes_deferred(cur: Any, tables: Sequence[str]) -> Iterator[None]:
    """Drop the indexes and constraints of `tables` for a bulk load, and build them after it.

    PostgreSQL only (elsewhere: nothing). Loading 10M sessions into a table whose primary
    key and pattern index are random strings, plus a deferred foreign key checked row by
    row at commit, crawls once the indexes outgrow shared_buffers; one sorted build per
    index afterwards does not. Nothing may reference `tables` (their keys are dropped).
    """
    if is_mysql():
        yield
        return
    saved: list[tuple[str, list[tuple[str, str]], list[str]]] = []
    for table in tables:
        # Foreign keys last, so they find their own table's keys back first.
        cur.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f') "
            "ORDER BY contype = 'f', conname",
            [table],
        )
        constraints = [(str(name), str(definition)) for name, definition in cur.fetchall()]
        cur.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i "
            "WHERE indrelid = %s::regclass AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            [table],
        )
        indexes = cur.fetchall()
        for name, _ in reversed(constraints):
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cur.execute(f"DROP INDEX {name}")
        saved.append((table, constraints, [definition for _, definition in indexes]))
    yield
    cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for table, constraints, definitions in saved:
        for definition in definitions:
            cur.execute(definition)
        for name, definition in constraints:
            cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def load_users(cur: Any, user_ids: Sequence[int], now: datetime) -> None:
    """Insert users `user_ids` (no usable password) and move auth_user's id sequence past them."""
    bulk_load(
        cur,
        "auth_user",
        "id, password, is_superuser, username, first_name, last_name, email, is_staff, "
        "is_active, date_joined",
        ((uid, "!", False, f"user{uid}", "", "", "", False, True, now) for uid in user_ids),
    )
    if not is_mysql():  # AUTO_INCREMENT moves past explicit ids by itself
        cur.execute("SELECT setval(pg_get_serial_sequence('auth_user', 'id'), %s)", [max(user_ids)])


def analyze(conn: Any, tables: Sequence[str]) -> None:
    """Commit the load and refresh the planner's statistics of `tables`.

    On PostgreSQL also VACUUM (visibility map) and CHECKPOINT, so no measured run
    pays for writing out the load's dirty pages.
    """
    conn.commit()
    if is_mysql():
        with conn.cursor() as cur:
            cur.execute(f"ANALYZE TABLE {', '.join(tables)}")
            cur.fetchall()
        return
    conn.autocommit = True
    conn.execute(f"VACUUM ANALYZE {', '.join(tables)}")
    conn.execute("CHECKPOINT")


# --- A real worker -------------------------------------------------------------------


class Worker:
    """A real `celery -A config worker --concurrency 1` subprocess on our queue."""

    def __init__(self, env: dict[str, str], *, pool: str = "prefork", name: str = "bench") -> None:
        self.env = {**os.environ, **env}
        self.pool = pool
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"revocation-bench-{name}-"))
        self.log = self.dir / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> Worker:
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
                "--pool",
                self.pool,
                "--concurrency",
                "1",
                "-Q",
                self.env["CELERY_TASK_DEFAULT_QUEUE"],
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{self.name}-{os.getpid()}-{time.monotonic_ns()}@%h",
            ],
            cwd=ROOT,
            env={**self.env, "LOG_LEVEL": "INFO"},
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while b" ready." not in self.log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                text = self.log.read_text()[-4000:]
                self.stop()
                raise RuntimeError(f"worker did not start:\n{text}")
            time.sleep(0.05)
        return self

    @property
    def pid(self) -> int:
        """Pid of the worker's main process."""
        assert self.process is not None
        return self.process.pid

    def task_pid(self) -> int:
        """Pid of the process that runs tasks: the pool child (prefork) or the main one (solo)."""
        if self.pool == "solo":
            return self.pid
        children = child_pids(self.pid)
        if len(children) != 1:
            raise RuntimeError(f"expected one pool child of {self.pid}, found {children}")
        return children[0]

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL the group if it hangs; drop the log.

        Set BENCH_KEEP_LOGS=1 to keep the worker's log folder.
        """
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        if not os.environ.get("BENCH_KEEP_LOGS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def child_pids(pid: int) -> list[int]:
    """Return the pids of the direct children of `pid` (scanning /proc)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            children.append(int(entry))
    return sorted(children)


def proc_memory_mb(pid: int) -> dict[str, float]:
    """Return VmRSS and VmHWM (peak RSS) of `pid` in MB, from /proc/<pid>/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def cpu_seconds(pid: int) -> float | None:
    """Return the CPU time (user + system) process `pid` has used; None if it is not ours to see.

    From /proc/<pid>/stat, so a local database server's backend can be measured too.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # After the command name (in parentheses, maybe with spaces): utime and stime are the
    # 12th and 13th fields (the 14th and 15th of the line).
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- Measuring ----------------------------------------------------------------------
# --- Measuring ----------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Return the `q`-th percentile (0-100) of `values`, nearest-rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(values: Sequence[float]) -> str:
    """Return 'p50 X ms, p95 Y ms, ...' for durations given in seconds."""
    ms = [v * 1000 for v in values]
    return (
        f"p50 {percentile(ms, 50):.2f} ms, p95 {percentile(ms, 95):.2f} ms, "
        f"mean {statistics.fmean(ms):.2f} ms, max {max(ms):.2f} ms (n={len(ms)})"
    )


def wait_for(predicate: Callable[[], Any], *, timeout: float, interval: float, what: str) -> Any:
    """Return the first truthy value of `predicate()`, raising after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def line(label: str, text: str) -> None:
    """Print one summary line."""
    print(f"{label:<44} {text}", flush=True)


def load_average() -> str:
    """Return the 1, 5 and 15-minute load averages and the core count, for headers."""
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return f"{one} {five} {fifteen} (1/5/15 min) on {os.cpu_count()} cores"


def header(title: str, **sizes: object) -> None:
    """Print the benchmark's title and its sizes."""
    print(f"# {title}", flush=True)
    for key, value in sizes.items():
        print(f"#   {key}: {value}", flush=True)


def statements(work: Callable[[], Any], using: str = "default") -> list[str]:
    """Run `work` once and return the SQL statements it sent (BEGIN/COMMIT included).

    Through CaptureQueriesContext, so with DEBUG off too; each statement cut to its
    first words (enough to tell an INSERT from an upsert or a transaction).
    """
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connections[using]) as captured:
        work()
    return [" ".join(q["sql"].split()[:3]) for q in captured.captured_queries]
