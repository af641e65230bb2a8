"""Cost of the app at login: a full POST /accounts/login/ with the app and without it.

Per database (PostgreSQL, then SQLite, each in a process of its own): production
settings (`bench._login_settings`: DEBUG off, HTTPS cookies, the MD5 password
hasher so hashing does not hide the rest), persistent connections (CONN_MAX_AGE
60, as a deployment with a pool has), no group or scope fence. Each login is a
fresh sign-in: Django's LoginView through the whole middleware stack with the
CSRF check on, authenticate(), login(), the session INSERT and save, the 302.

"bare" is the same project with the app taken out of the request: its middleware
left out of the handler and its signal receivers disconnected, so the login runs
Django's code only. The two alternate login by login in the same process, and the
figure is the ratio of their medians. Also printed: the SQL statements each login
sends, BEGIN/COMMIT included, and the ones the app adds.

    .venv/bin/python bench/login.py [--logins 1000] [--vendors postgresql,sqlite]

For comparison, `--vendors postgresql+atomic` runs with ATOMIC_REQUESTS (the link then
shares the view's commit) and `sqlite+wal` with SQLite in WAL mode (a commit no longer
syncs a rollback journal): neither is a default.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402

DB_NAME = "revocation_bench_login"
HOST = "bench.example"
PASSWORD = "bench-pass-123"  # noqa: S105 - a benchmark user's
APP_MIDDLEWARE = "revocation.middleware.RevocationMiddleware"
TARGET_RATIO = 1.15
TARGET_EXTRA_STATEMENTS = 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=1000, help="timed logins per variant")
    parser.add_argument("--warmup", type=int, default=50, help="untimed logins per variant")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--vendors", default="postgresql,sqlite")
    parser.add_argument("--pg", default=common.default_server(), help="PostgreSQL server URL")
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", common.DEFAULT_REDIS))
    parser.add_argument("--db-name", default=DB_NAME)
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.child:
        child(args, args.child)
        return
    common.header(
        "login: full POST /accounts/login/, with the app vs bare Django, same process",
        settings="production (bench._login_settings), MD5 hasher, CONN_MAX_AGE 60",
        logins=f"{args.logins} per variant, alternating (+{args.warmup} warm-up each)",
        users=args.users,
        fences="none (no user, group, scope or global fence exists)",
        target=f"app <= {TARGET_RATIO:.2f} x bare, at most {TARGET_EXTRA_STATEMENTS} "
        "extra statement",
    )
    for vendor in [v.strip() for v in args.vendors.split(",") if v.strip()]:
        # One process per database: Django is set up once per process.
        command = [sys.executable, __file__, "--child", vendor, *sys.argv[1:]]
        subprocess.run(command, check=True, cwd=common.ROOT)  # noqa: S603


def child(args: argparse.Namespace, vendor: str) -> None:
    """Measure on one database: `postgresql` (a database of our own) or `sqlite` (a file)."""
    with tempfile.TemporaryDirectory(prefix="revocation-bench-login-") as var:
        env = {
            "DJANGO_SETTINGS_MODULE": "bench._login_settings",
            "SECRET_KEY": "bench-only-not-secret-" + "x" * 40,
            "ALLOWED_HOSTS": HOST,
            "CONN_MAX_AGE": "60",
            "SESSION_ENGINE": "db",
            "REVOCATION_VAR_DIR": var,
            "LOG_LEVEL": "WARNING",
        }
        database, _, variant = vendor.partition("+")
        if variant not in ("", "atomic", "wal") or (variant == "wal" and database != "sqlite"):
            raise SystemExit(f"unknown {vendor!r}: postgresql[+atomic] or sqlite[+atomic|+wal]")
        env["BENCH_ATOMIC_REQUESTS"] = "1" if variant == "atomic" else "0"
        env["BENCH_SQLITE_WAL"] = "1" if variant == "wal" else "0"
        if database == "postgresql":
            env["DATABASE_URL"] = common.database_url(args.pg, args.db_name)
            env["REDIS_URL"] = args.redis
            common.create_database(args.pg, args.db_name)
        elif database == "sqlite":
            # The embedded default: SQLite and the file cache.
            env["DATABASE_URL"] = f"sqlite:///{var}/db.sqlite3"
            os.environ.pop("REDIS_URL", None)
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            raise SystemExit(f"unknown {vendor!r}: postgresql[+atomic] or sqlite[+atomic|+wal]")
        os.environ.update(env)
        if str(common.ROOT) not in sys.path:
            sys.path.insert(0, str(common.ROOT))
        try:
            common.setup_django()
            measure(args, vendor)
        finally:
            if database == "postgresql":
                common.drop_database(args.pg, args.db_name)


def measure(args: argparse.Namespace, vendor: str) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client, override_settings

    user_model = get_user_model()
    names = [f"login-{i}" for i in range(args.users)]
    for name in names:
        user_model.objects.create_user(name, password=PASSWORD)

    # What a browser sends with the form over HTTPS: CSRF checks the origin there.
    headers: Any = {"HTTP_HOST": HOST, "HTTP_ORIGIN": f"https://{HOST}"}
    headers["HTTP_REFERER"] = f"https://{HOST}/accounts/login/"
    app = Client(enforce_csrf_checks=True, **headers)
    bare = Client(enforce_csrf_checks=True, **headers)
    # A handler builds its middleware chain at its first request, and keeps it.
    app.get("/accounts/login/", secure=True)
    with override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m != APP_MIDDLEWARE]):
        bare.get("/accounts/login/", secure=True)

    def log_in(client: Client, n: int) -> float:
        """Sign in afresh (no session cookie) as the n-th user; return the seconds it took."""
        client.cookies.pop(settings.SESSION_COOKIE_NAME, None)
        data = {
            "username": names[n % len(names)],
            "password": PASSWORD,
            # Rotated by every login: the cookie holds the current one.
            "csrfmiddlewaretoken": client.cookies[settings.CSRF_COOKIE_NAME].value,
        }
        t0 = time.perf_counter()
        response = client.post("/accounts/login/", data, secure=True)
        elapsed = time.perf_counter() - t0
        assert response.status_code == 302, (response.status_code, response.content[:300])
        return elapsed

    def run(variant: str, n: int) -> float:
        if variant == "app":
            return log_in(app, n)
        with without_app_receivers():
            return log_in(bare, n)

    statements = {}
    for variant in ("bare", "app"):
        with capture_statements(connection) as captured:
            run(variant, 0)
        statements[variant] = captured
    times: dict[str, list[float]] = {"bare": [], "app": []}
    for i in range(args.warmup):
        run("bare", i)
        run("app", i)
    for i in range(args.logins):
        # Alternate which goes first, so neither always follows the other.
        order = ("bare", "app") if i % 2 else ("app", "bare")
        for variant in order:
            times[variant].append(run(variant, i))
    report(vendor, times, statements)


@contextmanager
def capture_statements(connection: Any) -> Iterator[list[str]]:
    """Collect the SQL statements sent on `connection` meanwhile, BEGIN/COMMIT included."""
    from django.test.utils import CaptureQueriesContext

    captured: list[str] = []
    with CaptureQueriesContext(connection) as context:
        yield captured
    captured.extend(q["sql"] for q in context.captured_queries)


@contextmanager
def without_app_receivers() -> Iterator[None]:
    """Disconnect every receiver of the app (module revocation.*) from Django's signals."""
    from django.contrib.auth import signals as auth_signals
    from django.core import signals as core_signals
    from django.db.models import signals as model_signals

    chosen = [
        auth_signals.user_logged_in,
        auth_signals.user_logged_out,
        auth_signals.user_login_failed,
        model_signals.pre_save,
        model_signals.post_save,
        model_signals.m2m_changed,
        core_signals.request_started,
        core_signals.request_finished,
    ]
    saved = {signal: signal.receivers for signal in chosen}
    for signal in chosen:
        signal.receivers = [r for r in signal.receivers if not _is_app_receiver(r)]
        signal.sender_receivers_cache.clear()
    try:
        yield
    finally:
        for signal, receivers in saved.items():
            signal.receivers = receivers
            signal.sender_receivers_cache.clear()


def _is_app_receiver(entry: Any) -> bool:
    """Return whether a Signal.receivers entry (key, receiver or weak reference, ...) is the app's."""
    target = entry[1]
    if isinstance(target, weakref.ReferenceType):
        target = target()
    return str(getattr(target, "__module__", "")).startswith("revocation.")


def report(vendor: str, times: dict[str, list[float]], statements: dict[str, list[str]]) -> None:
    """Print the figures of one database, each beside its target."""
    database, _, variant = vendor.partition("+")
    name = {"postgresql": "PostgreSQL", "sqlite": "SQLite (the embedded default)"}[database]
    name += {
        "": "",
        "atomic": ", ATOMIC_REQUESTS on (not the default; for comparison)",
        "wal": ", WAL mode and synchronous=NORMAL (not the default; for comparison)",
    }[variant]
    p50 = {v: common.percentile(t, 50) for v, t in times.items()}
    mean = {v: sum(t) / len(t) for v, t in times.items()}
    ratio = p50["app"] / p50["bare"]
    print(f"## {name}", flush=True)
    common.line(f"login, bare Django ({vendor})", common.summary_ms(times["bare"]))
    common.line(f"login, with the app ({vendor})", common.summary_ms(times["app"]))
    common.line(
        f"ratio app / bare ({vendor})",
        f"{ratio:.3f} (p50, {100 * (ratio - 1):+.1f} %), {mean['app'] / mean['bare']:.3f} (mean); "
        f"target <= {TARGET_RATIO:.2f} -> {'met' if ratio <= TARGET_RATIO else 'NOT met'}",
    )
    extra = len(statements["app"]) - len(statements["bare"])
    common.line(
        f"statements per login ({vendor})",
        f"bare {len(statements['bare'])}, app {len(statements['app'])} ({extra:+d}); "
        f"target <= +{TARGET_EXTRA_STATEMENTS} -> "
        f"{'met' if extra <= TARGET_EXTRA_STATEMENTS else 'NOT met'}",
    )
    for sql in _added(statements["bare"], statements["app"]):
        common.line("  added by the app", " ".join(sql.split())[:110])


def _added(bare: list[str], app: list[str]) -> list[str]:
    """Return the statements of `app` beyond those of `bare` (compared by their first words)."""
    remaining = [_shape(s) for s in bare]
    added = []
    for sql in app:
        if _shape(sql) in remaining:
            remaining.remove(_shape(sql))
        else:
            added.append(sql)
    return added


def _shape(sql: str) -> str:
    """Return what identifies a statement across two logins: its verb and its first table."""
    table = re.search(r"(?:FROM|INTO|UPDATE)\s+[`\"]?(\w+)", sql)
    return f"{sql.split()[0]} {table.group(1) if table else ''}"


if __name__ == "__main__":
    main()
