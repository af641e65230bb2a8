"""Single-user revocation on PostgreSQL + Redis with one real worker.

Figures (one line each):
- latency from the request's COMMIT to "sessions gone" (no row in django_session and,
  on cached_db, no cached copy), p50/p95 over --requests requests, each for a different
  user holding --sessions-per-user real sessions (made by django.contrib.auth.login()
  through the configured session store, linked by the app's own receiver); closed loop
  (one request at a time; the next starts --settle seconds after the previous one reads
  `done`, so it meets an idle worker) against one `celery -A config worker --concurrency 1`; also
  commit -> `done`, and the handler's cost while that idle worker is running;
- the web-handler cost of revoke_user_sessions(), and in the same run, interleaved
  round-robin, the two things it should cost: a bare INSERT of a RevocationRequest row
  (ORM create, autocommit) and a bare Celery publish (process_request.delay()); the
  worker is stopped during this phase so no task competes for the 2 cores;
- for context, deleting one user's sessions synchronously in the request with raw SQL.

    .venv/bin/python bench/revoke_user.py [--requests 200] [--engines db,cached_db]
                                          [--conn-max-age 60]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="timed revocations per engine")
    parser.add_argument("--sessions-per-user", type=int, default=2)
    parser.add_argument(
        "--handler-iters", type=int, default=300, help="timed calls of each handler variant"
    )
    parser.add_argument("--sync-users", type=int, default=200, help="users for the raw-SQL line")
    parser.add_argument(
        "--engines", default="db,cached_db", help="comma-separated session engines (db first)"
    )
    parser.add_argument("--pool", default="prefork", choices=["prefork", "solo"])
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=None,
        help="CONN_MAX_AGE of the worker (default: the settings' 0, a new connection per task)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.05,
        help="seconds to wait after `done` before the next request (the task acks and closes)",
    )
    parser.add_argument("--poll-interval", type=float, default=0.001, help="seconds")
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG_URL", common.DEFAULT_PG))
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", common.DEFAULT_REDIS))
    parser.add_argument("--db-name", default="revocation_bench_user")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    env = common.configure(
        tag="user", server_url=args.pg, db_name=args.db_name, redis_url=args.redis
    )
    common.header(
        "revoke_user: single-user revocation, PostgreSQL + Redis, one worker (--concurrency 1)",
        requests_per_engine=args.requests,
        sessions_per_user=args.sessions_per_user,
        engines=",".join(engines),
        handler_iterations_per_variant=args.handler_iters,
        sync_raw_sql_users=args.sync_users,
        worker_pool=f"{args.pool}, concurrency 1",
        worker_conn_max_age=args.conn_max_age if args.conn_max_age is not None else "0 (default)",
        database=env["DATABASE_URL"],
        queue=env["CELERY_TASK_DEFAULT_QUEUE"],
    )
    common.create_database(args.pg, args.db_name)
    try:
        common.setup_django()
        run(args, env, engines)
    finally:
        common.forget_queue(args.redis, env["CELERY_TASK_DEFAULT_QUEUE"])
        if not args.keep_db:
            common.drop_database(args.pg, args.db_name)


# --- Fixtures -------------------------------------------------------------------------


def make_users(prefix: str, count: int) -> list[Any]:
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    user_model.objects.bulk_create(
        [user_model(username=f"{prefix}{i}", password="!") for i in range(count)]  # noqa: S106
    )
    return list(user_model.objects.filter(username__startswith=prefix).order_by("pk"))


def log_in(user: Any, n: int) -> str:
    """Log `user` in through the real session store and login(); return the session key."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import login
    from django.http import HttpRequest

    request = HttpRequest()
    request.META.update(
        REMOTE_ADDR=f"10.0.{n // 250 % 250}.{n % 250 + 1}",
        HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0 bench",
    )
    request.session = import_module(settings.SESSION_ENGINE).SessionStore()
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session.save()
    key = request.session.session_key
    assert key is not None
    return key


def sessions_for(users: list[Any], per_user: int) -> dict[int, list[str]]:
    from revocation.models import UserSession

    keys = {u.pk: [log_in(u, u.pk * per_user + i) for i in range(per_user)] for u in users}
    linked = UserSession.objects.filter(user_id__in=list(keys)).count()
    assert linked == len(users) * per_user, f"{linked} mappings for {len(users) * per_user}"
    return keys


# --- Phases -------------------------------------------------------------------------------


def run(args: argparse.Namespace, env: dict[str, str], engines: list[str]) -> None:
    from django.test import override_settings

    handler_users = make_users("handler-", 50)
    handler_phase(args, env, handler_users)
    with override_settings(SESSION_ENGINE="django.contrib.sessions.backends.db"):
        sync_phase(make_users("sync-", args.sync_users), args.sessions_per_user)
    for engine in engines:
        with override_settings(SESSION_ENGINE=f"django.contrib.sessions.backends.{engine}"):
            latency_phase(args, env, engine)


def handler_phase(args: argparse.Namespace, env: dict[str, str], users: list[Any]) -> None:
    """Time revoke_user_sessions() against a bare INSERT and a bare publish, interleaved."""
    from revocation import services
    from revocation.models import RevocationRequest
    from revocation.tasks import process_request

    def handler(i: int) -> None:
        services.revoke_user_sessions(users[i % len(users)], reason="bench")

    def insert(i: int) -> None:
        RevocationRequest.objects.create(
            target=RevocationRequest.Target.USERS,
            user_ids=[users[i % len(users)].pk],
            users_total=1,
            reason="bench",
        )

    def publish(i: int) -> None:
        process_request.delay(0)

    variants = {"handler": handler, "insert": insert, "publish": publish}
    statements = common.statements(lambda: handler(0))
    times: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(30):  # warm-up: connections, prepared paths, the producer pool
        for fn in variants.values():
            fn(i)
    for i in range(args.handler_iters):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn(i)
            times[name].append(time.perf_counter() - t0)
    queued = common.queue_length(args.redis, env["CELERY_TASK_DEFAULT_QUEUE"])
    # Nobody consumed these: drop them and their rows before a worker starts.
    common.forget_queue(args.redis, env["CELERY_TASK_DEFAULT_QUEUE"])
    RevocationRequest.objects.all().delete()

    p50 = {name: common.percentile(v, 50) for name, v in times.items()}
    mean = {name: sum(v) / len(v) for name, v in times.items()}
    print(f"## web-handler cost (worker stopped; {queued} messages published, then purged)")
    common.line("handler revoke_user_sessions()", common.summary_ms(times["handler"]))
    common.line("baseline bare INSERT RevocationRequest", common.summary_ms(times["insert"]))
    common.line("baseline bare publish .delay()", common.summary_ms(times["publish"]))
    common.line(
        "ratio handler / (insert + publish)",
        f"{p50['handler'] / (p50['insert'] + p50['publish']):.2f} (p50), "
        f"{mean['handler'] / (mean['insert'] + mean['publish']):.2f} (mean); target <= 1.30",
    )
    common.line("statements per handler call", " | ".join(statements))
    handler_cost.update(p50)


handler_cost: dict[str, float] = {}


def sync_phase(users: list[Any], per_user: int) -> None:
    """For context: delete one user's sessions and mappings in the request, raw SQL."""
    from django.db import connection, transaction

    keys = sessions_for(users, per_user)
    times = []
    for user in users:
        t0 = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM django_session WHERE session_key IN "
                "(SELECT session_key FROM revocation_usersession WHERE user_id = %s)",
                [user.pk],
            )
            deleted = cursor.rowcount
            cursor.execute("DELETE FROM revocation_usersession WHERE user_id = %s", [user.pk])
        times.append(time.perf_counter() - t0)
        assert deleted == len(keys[user.pk])
    print(f"## context: synchronous in-request delete, raw SQL ({per_user} sessions/user, db)")
    common.line("sync raw-SQL delete (2 stmts, 1 tx)", common.summary_ms(times))
    if handler_cost:
        common.line(
            "ratio sync delete / handler",
            f"{common.percentile(times, 50) / handler_cost['handler']:.2f} (p50)",
        )


def latency_phase(args: argparse.Namespace, env: dict[str, str], engine: str) -> None:
    """Closed loop: request, wait until the sessions are gone, next user."""
    from django.conf import settings
    from django.core.cache import caches
    from django.db import connection, connections

    from revocation import services
    from revocation.models import RevocationRequest

    users = make_users(f"lat-{engine}-", args.requests)
    controls = make_users(f"ctl-{engine}-", 5)
    keys = sessions_for(users, args.sessions_per_user)
    control_keys = [k for ks in sessions_for(controls, args.sessions_per_user).values() for k in ks]
    cache = caches[settings.SESSION_CACHE_ALIAS]
    prefix = "django.contrib.sessions.cached_db" if engine == "cached_db" else None

    def alive(session_keys: list[str]) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM django_session WHERE session_key = ANY(%s)", [session_keys]
            )
            rows = int(cursor.fetchone()[0])
        if prefix is not None:
            rows += len(cache.get_many([prefix + k for k in session_keys]))
        return rows

    # The instant the request row commits: this connection's COMMIT, or the end of a
    # write that ran in autocommit (PostgreSQL writes the row and its fences in one
    # statement, with no transaction). Bench-side only.
    wrapper: Any = connections["default"]
    commits: list[float] = []
    real_commit = wrapper._commit

    def timed_commit() -> Any:
        result = real_commit()
        commits.append(time.perf_counter())
        return result

    def timed_autocommit(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        writes = ("INSERT", "UPDATE", "DELETE", "WITH")
        if not wrapper.in_atomic_block and sql.lstrip().upper().startswith(writes):
            commits.append(time.perf_counter())
        return result

    worker_env = {**env, "SESSION_ENGINE": engine}
    if args.conn_max_age is not None:
        worker_env["CONN_MAX_AGE"] = str(args.conn_max_age)
    latencies, from_return, handler_times, to_done = [], [], [], []
    with common.Worker(worker_env, pool=args.pool, name=f"user-{engine}"):
        for user in users[:3]:  # warm-up: the first tasks import and connect
            _revoke_and_wait(services, user, keys[user.pk], alive, args.poll_interval)
        timed = users[3:] if len(users) > 3 else users
        wrapper._commit = timed_commit
        try:
            with wrapper.execute_wrapper(timed_autocommit):
                for user in timed:
                    commits.clear()
                    t0 = time.perf_counter()
                    t_return, t_gone, t_done = _revoke_and_wait(
                        services, user, keys[user.pk], alive, args.poll_interval
                    )
                    assert len(commits) == 1, commits
                    time.sleep(args.settle)
                    latencies.append(t_gone - commits[0])
                    from_return.append(t_gone - t_return)
                    to_done.append(t_done - commits[0])
                    handler_times.append(t_return - t0)
        finally:
            del wrapper._commit
        common.wait_for(
            lambda: not RevocationRequest.objects.exclude(state="done").exists(),
            timeout=60,
            interval=0.05,
            what="every request to reach done",
        )
    survivors = alive(control_keys)
    assert survivors == len(control_keys) * (2 if prefix else 1), survivors
    failed = RevocationRequest.objects.exclude(state="done").count()
    revoked = sum(RevocationRequest.objects.values_list("sessions_revoked", flat=True))
    print(
        f"## latency, engine {engine}: {len(latencies)} timed requests (+3 warm-up), "
        f"{revoked} sessions revoked, {failed} not done, control sessions intact"
    )
    common.line(f"latency commit -> gone ({engine})", common.summary_ms(latencies))
    common.line(f"latency handler return -> gone ({engine})", common.summary_ms(from_return))
    common.line(f"latency commit -> request done ({engine})", common.summary_ms(to_done))
    common.line(
        f"handler with idle worker running ({engine})",
        common.summary_ms(handler_times)
        + (
            f"; ratio to stopped-worker p50 {common.percentile(handler_times, 50) / handler_cost['handler']:.2f}"
            if handler_cost
            else ""
        ),
    )
    if handler_cost:
        publish_p50 = handler_cost["publish"]
        common.line(
            f"ratio latency p50 / publish p50 ({engine})",
            f"{common.percentile(latencies, 50) / publish_p50:.1f}",
        )
    for cache_key in control_keys:
        if prefix is not None:
            cache.delete(prefix + cache_key)
    RevocationRequest.objects.all().delete()


def _revoke_and_wait(
    services: Any, user: Any, keys: list[str], alive: Any, interval: float
) -> tuple[float, float, float]:
    """Revoke, wait until the sessions are gone, then until the request is `done`.

    Waiting for `done` too means the next request meets an idle worker (the task
    still commits its last page and closes its connection after the sessions go).
    """
    from revocation.models import RevocationRequest

    request = services.revoke_user_sessions(user, reason="bench")
    t_return = time.perf_counter()
    deadline = t_return + 30
    while alive(keys):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"sessions of user {user.pk} still alive after 30 s")
        time.sleep(interval)
    t_gone = time.perf_counter()
    done = RevocationRequest.objects.filter(pk=request.pk, state="done")
    while not done.exists():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"request {request.pk} not done after 30 s")
        time.sleep(interval)
    return t_return, t_gone, time.perf_counter()


if __name__ == "__main__":
    main()
