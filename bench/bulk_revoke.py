"""Org-wide revocation on PostgreSQL or MariaDB/MySQL, + Redis, with one or more real workers.

For each size (users in one group, ~5 sessions each, plus UserSession rows) and each
REVOCATION_BATCH_SIZE (users per page):
- end to end: revoke_sessions(group="bench-org") in this process, one
  `celery -A config worker --concurrency 1` (a fresh one per run) does the work; time
  from the call to the row reading `done`, sessions/s, and peak RSS (VmHWM) of the
  process that ran the task (the prefork pool child, or the main process with
  --pool solo) and of the worker's main process;
- baselines in the same run, on the same freshly loaded data, from this process:
  raw   - `DELETE FROM django_session WHERE session_key IN (...)` plus the mapping delete
          by the same keys, 5,000 keys per transaction (keys known up front, in memory);
  page  - set-based, per page of users (each batch size): SELECT the next page of member
          ids from auth_user_groups, then one `WITH m AS (DELETE FROM
          revocation_usersession ... RETURNING session_key) DELETE FROM django_session
          USING m` per transaction (MySQL: a `DELETE s FROM django_session s JOIN
          revocation_usersession m ...` and a mapping delete by user id): what the worker
          could do at best.
--workers 1,2 runs each end-to-end revocation once with one worker (the request on
one task, REVOCATION_FANOUT_WIDTH=1) and once with two (two worker processes, the
request split into two key ranges, REVOCATION_FANOUT_WIDTH=2 and
REVOCATION_FANOUT_MIN_USERS=1), and reports N workers against 1 in the same round.
Each end-to-end run comes right after the page-SQL baseline of its batch size, and
is reported as a share of it (target: >= 80% at every batch size, issue 15);
--rounds N repeats each pair and prints the median share (the machine is shared, and
its load drifts between runs). A few outsider users (not in the group) hold sessions
that must survive. Every run starts from a fresh load of both session tables
(PostgreSQL: COPY, VACUUM ANALYZE, CHECKPOINT; MySQL: multi-row INSERTs, ANALYZE TABLE).
The server is --pg, else BENCH_PG_URL, else DATABASE_URL's server (postgres:// or
mysql://), else the local PostgreSQL; the database is our own (--db-name).
--profile runs the worker's service (services.run_request) in this process instead of
a worker and prints where the time goes: per SQL statement shape, in COMMITs, and in
Python (ORM, driver, the service itself).

    .venv/bin/python bench/bulk_revoke.py                 # 5,000 and 10,000 users
    .venv/bin/python bench/bulk_revoke.py --full          # 50,000 and 100,000 users
    .venv/bin/python bench/bulk_revoke.py --users 100000 --batch-sizes 5000
    .venv/bin/python bench/bulk_revoke.py --full --workers 1,2 --baselines page
    .venv/bin/python bench/bulk_revoke.py --users 100000 --baselines page --rounds 3
    .venv/bin/python bench/bulk_revoke.py --users 100000 --baselines page --profile
    DATABASE_URL=mysql://root@127.0.0.1:3306/x .venv/bin/python bench/bulk_revoke.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402

GROUP = "bench-org"
RAW_BATCH = 5000
TARGET_RATIO = 0.5
# End to end against the same statements run bare, per batch size (issue 15).
TARGET_PAGE_RATIO = 0.8
TARGET_RSS_MB = 150.0
# Two workers (each one pool process) on a 2-core machine, against one, same round.
TARGET_FANOUT_SPEEDUP = 1.3


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--users", default="5000,10000", help="comma-separated group sizes (default 5000,10000)"
    )
    parser.add_argument("--full", action="store_true", help="sizes 50000,100000")
    parser.add_argument("--sessions-per-user", type=int, default=5)
    parser.add_argument(
        "--batch-sizes", default="1000,5000", help="REVOCATION_BATCH_SIZE values (users/page)"
    )
    parser.add_argument(
        "--outsider-every", type=int, default=50, help="every Nth user id is not in the group"
    )
    parser.add_argument("--baselines", default="raw,page", help="which baselines to run")
    parser.add_argument("--engine", default="db", choices=["db", "cached_db"])
    parser.add_argument("--pool", default="prefork", choices=["prefork", "solo"])
    parser.add_argument(
        "--rounds", type=int, default=1, help="page-SQL / end-to-end pairs per batch size"
    )
    parser.add_argument(
        "--workers",
        default="1",
        help="comma-separated worker counts; N > 1 splits the request into N key ranges",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of a worker, run the service in this process and time every SQL statement",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--pg", default=common.default_server(), help="server URL, postgres:// or mysql://"
    )
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", common.DEFAULT_REDIS))
    parser.add_argument("--db-name", default="revocation_bench_bulk")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    args = parser.parse_args()
    if args.full:
        args.users = "50000,100000"
    args.sizes = [int(s) for s in args.users.split(",") if s.strip()]
    args.batches = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    args.baseline_kinds = [s.strip() for s in args.baselines.split(",") if s.strip()]
    args.worker_counts = [int(s) for s in args.workers.split(",") if s.strip()]
    if not args.worker_counts or min(args.worker_counts) < 1:
        raise SystemExit("--workers takes positive counts, e.g. 1,2")
    return args


def main() -> None:
    args = parse_args()
    env = common.configure(
        tag="bulk",
        server_url=args.pg,
        db_name=args.db_name,
        redis_url=args.redis,
        session_engine=args.engine,
    )
    common.header(
        "bulk_revoke: org-wide revocation (revoke_sessions(group=...)), "
        f"{common.vendor(args.pg)} + Redis, {args.workers} worker(s)",
        group_sizes_users=", ".join(f"{s:,}" for s in args.sizes),
        sessions_per_user=args.sessions_per_user,
        outsiders=f"every {args.outsider_every}th user id is outside the group (sessions must survive)",
        revocation_batch_sizes_users_per_page=", ".join(str(b) for b in args.batches),
        raw_baseline_batch_keys=RAW_BATCH,
        baselines=",".join(args.baseline_kinds),
        session_engine=args.engine,
        worker=f"--pool {args.pool} --concurrency 1, fresh worker(s) per run; RSS of "
        + ("the main process (solo pool)" if args.pool == "solo" else "the pool child")
        + " of the first worker",
        workers=f"{args.workers}; N > 1: N worker processes, REVOCATION_FANOUT_WIDTH=N, "
        "REVOCATION_FANOUT_MIN_USERS=1 (1: REVOCATION_FANOUT_WIDTH=1, the request on one task)",
        database=env["DATABASE_URL"],
        queue=env["CELERY_TASK_DEFAULT_QUEUE"],
        targets=f"throughput >= {TARGET_PAGE_RATIO:.0%} of page SQL at each batch size and "
        f">= {TARGET_RATIO:.0%} of raw, worker peak RSS < {TARGET_RSS_MB:.0f} MB and flat; "
        f"2 workers >= {TARGET_FANOUT_SPEEDUP:.1f}x 1 worker",
    )
    common.create_database(args.pg, args.db_name)
    started = time.monotonic()
    try:
        common.setup_django()
        results = [run_size(args, env, size) for size in args.sizes]
        print("## summary", flush=True)
        for lines in results:
            for label, text in lines:
                common.line(label, text)
        if len(results) > 1:
            flatness(args, results)
    finally:
        common.forget_queue(args.redis, env["CELERY_TASK_DEFAULT_QUEUE"])
        if not args.keep_db:
            common.drop_database(args.pg, args.db_name)
    print(f"# wall time {time.monotonic() - started:.0f} s", flush=True)


# --- Data --------------------------------------------------------------------------------


class Dataset:
    """Deterministic users, members and sessions for one size."""

    def __init__(self, args: argparse.Namespace, members: int) -> None:
        rng = random.Random(args.seed + members)
        every = args.outsider_every
        total = members + members // (every - 1) if every > 1 else members
        self.user_ids = list(range(1, total + 1))
        self.members = [u for u in self.user_ids if every <= 1 or u % every != 0]
        del self.members[members:]
        member_set = set(self.members)
        self.user_ids = [u for u in self.user_ids if u <= self.members[-1]]
        self.outsiders = [u for u in self.user_ids if u not in member_set]
        per_user = args.sessions_per_user
        # Logins arrive in random order: a user's sessions are scattered over both tables.
        pairs = [
            (u, f"{rng.getrandbits(128):032x}") for u in self.user_ids for _ in range(per_user)
        ]
        rng.shuffle(pairs)
        self.sessions = pairs
        self.member_keys = sorted(
            ((u, k) for u, k in pairs if u in member_set), key=lambda pair: pair[0]
        )
        self.target_sessions = len(self.member_keys)
        self.outsider_sessions = len(pairs) - self.target_sessions


def load_users(data: Dataset) -> int:
    """Users, the group and its memberships, once per size."""
    from django.contrib.auth.models import Group

    from revocation.models import RevocationRequest

    RevocationRequest.objects.all().delete()
    now = datetime.now(UTC)
    with common.connect() as conn, conn.cursor() as cur:
        common.truncate(
            cur, ["auth_user_groups", "auth_user", "django_session", "revocation_usersession"]
        )
        common.load_users(cur, data.user_ids, now)
    group, _ = Group.objects.get_or_create(name=GROUP)
    with common.connect() as conn, conn.cursor() as cur:
        rows = ((uid, group.pk) for uid in data.members)
        common.bulk_load(cur, "auth_user_groups", "user_id, group_id", rows)
    return group.pk


def load_sessions(data: Dataset, blob: str) -> float:
    """(Re)load both session tables, then refresh statistics (common.analyze)."""
    t0 = time.perf_counter()
    expire = datetime.now(UTC) + timedelta(days=14)
    base = datetime.now(UTC) - timedelta(days=7)
    with common.connect() as conn:
        with conn.cursor() as cur:
            common.truncate(cur, ["django_session", "revocation_usersession"])
            common.bulk_load(
                cur,
                "django_session",
                "session_key, session_data, expire_date",
                ((key, blob, expire) for _, key in data.sessions),
            )
            common.bulk_load(
                cur,
                "revocation_usersession",
                "user_id, session_key, created_at, last_seen_at, ip, user_agent, login_id, "
                "device, country, city",
                (
                    (
                        uid,
                        key,
                        at,
                        at,
                        f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                        UA,
                        "",
                        "",
                        "",
                        "",
                    )
                    for i, (uid, key) in enumerate(data.sessions)
                    for at in [base + timedelta(milliseconds=i)]
                ),
            )
        common.analyze(
            conn, ["django_session", "revocation_usersession", "auth_user", "auth_user_groups"]
        )
    return time.perf_counter() - t0


UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


def counts() -> tuple[int, int]:
    with common.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT (SELECT count(*) FROM django_session), "
            "(SELECT count(*) FROM revocation_usersession)"
        )
        sessions, mapped = cur.fetchone()
    return int(sessions), int(mapped)


def check_outcome(data: Dataset, what: str) -> None:
    """Every member session and mapping gone, every outsider one intact."""
    sessions, mapped = counts()
    expected = data.outsider_sessions
    if (sessions, mapped) != (expected, expected):
        raise AssertionError(
            f"{what}: {sessions} sessions / {mapped} mappings left, expected {expected} each"
        )


# --- Baselines (this process, raw SQL) ------------------------------------------------------


def baseline_raw(data: Dataset) -> tuple[float, int]:
    """Delete by key, RAW_BATCH keys per transaction: sessions, then their mappings."""
    keys = [k for _, k in data.member_keys]
    deleted = 0
    with common.connect() as conn, conn.cursor() as cur:
        t0 = time.perf_counter()
        for start in range(0, len(keys), RAW_BATCH):
            batch = keys[start : start + RAW_BATCH]
            marks = ",".join(["%s"] * len(batch))
            cur.execute(f"DELETE FROM django_session WHERE session_key IN ({marks})", batch)
            deleted += cur.rowcount
            cur.execute(f"DELETE FROM revocation_usersession WHERE session_key IN ({marks})", batch)
            conn.commit()
        elapsed = time.perf_counter() - t0
    return elapsed, deleted


def baseline_page(data: Dataset, group_id: int, page: int) -> tuple[float, int]:
    """Per page of member ids: one set-based statement deleting mappings and sessions."""
    deleted = 0
    cursor = 0
    with common.connect() as conn, conn.cursor() as cur:
        t0 = time.perf_counter()
        while True:
            cur.execute(
                "SELECT user_id FROM auth_user_groups WHERE group_id = %s AND user_id > %s "
                "ORDER BY user_id LIMIT %s",
                [group_id, cursor, page],
            )
            ids = [row[0] for row in cur.fetchall()]
            if not ids:
                conn.commit()
                break
            if common.is_mysql():
                # No DELETE ... RETURNING: the sessions by a join first, then their mappings.
                marks = ",".join(["%s"] * len(ids))
                cur.execute(
                    "DELETE s FROM django_session s JOIN revocation_usersession m "
                    f"ON s.session_key = m.session_key WHERE m.user_id IN ({marks})",
                    ids,
                )
                deleted += cur.rowcount
                cur.execute(f"DELETE FROM revocation_usersession WHERE user_id IN ({marks})", ids)
            else:
                cur.execute(
                    "WITH m AS (DELETE FROM revocation_usersession WHERE user_id = ANY(%s) "
                    "RETURNING session_key) "
                    "DELETE FROM django_session s USING m WHERE s.session_key = m.session_key",
                    [ids],
                )
                deleted += cur.rowcount
            conn.commit()
            cursor = ids[-1]
        elapsed = time.perf_counter() - t0
    return elapsed, deleted


# --- End to end ----------------------------------------------------------------------------


def end_to_end(
    args: argparse.Namespace, env: dict[str, str], data: Dataset, batch: int, workers: int = 1
) -> dict[str, Any]:
    """`workers` fresh workers with REVOCATION_BATCH_SIZE=batch; the group revocation, timed."""
    from django.contrib.auth import get_user_model

    from revocation import services
    from revocation.models import RevocationRequest

    worker_env = {
        **env,
        "REVOCATION_BATCH_SIZE": str(batch),
        # One key range per worker; one worker keeps the request on one task.
        "REVOCATION_FANOUT_WIDTH": str(workers),
        "REVOCATION_FANOUT_MIN_USERS": "1",
    }
    with contextlib.ExitStack() as stack:
        worker, *_ = [
            stack.enter_context(common.Worker(worker_env, pool=args.pool, name=f"bulk-{batch}-{n}"))
            for n in range(workers)
        ]
        # Warm-up: the pool child imports, connects and runs one tiny request first
        # (a user with no sessions, outside the group).
        spare = get_user_model().objects.create(username=f"spare-{batch}-{time.monotonic_ns()}")
        warm = services.revoke_user_sessions(spare, reason="bench warm-up")
        common.wait_for(
            lambda: RevocationRequest.objects.filter(pk=warm.pk, state="done").exists(),
            timeout=60,
            interval=0.02,
            what="the warm-up request",
        )
        task_pid = worker.task_pid()
        idle = common.proc_memory_mb(task_pid)
        t0 = time.perf_counter()
        request = services.revoke_sessions(group=GROUP, reason="bench org-wide")
        t_return = time.perf_counter()
        common.wait_for(
            lambda: RevocationRequest.objects.filter(
                pk=request.pk, state__in=["done", "failed"]
            ).exists(),
            timeout=3600,
            interval=0.02,
            what="the bulk request",
        )
        elapsed = time.perf_counter() - t0
        peak = common.proc_memory_mb(task_pid)
        main = common.proc_memory_mb(worker.pid)
        same_child = worker.task_pid() == task_pid
    spare.delete()
    request.refresh_from_db()
    parts = request.parts.count()
    if request.state != "done":
        raise AssertionError(f"request {request.pk} {request.state}: {request.error}")
    check_outcome(data, f"end-to-end batch {batch}")
    worked = (
        (request.finished_at - request.started_at).total_seconds()
        if request.finished_at and request.started_at
        else float("nan")
    )
    return {
        "elapsed": elapsed,
        "handler": t_return - t0,
        "worked": worked,
        "revoked": request.sessions_revoked,
        "users_done": request.users_done,
        "idle_mb": idle["VmRSS"],
        "peak_mb": peak["VmHWM"],
        "main_peak_mb": main["VmHWM"],
        "same_child": same_child,
        "pid": task_pid,
        "parts": parts,
    }


def run_size(args: argparse.Namespace, env: dict[str, str], size: int) -> list[tuple[str, str]]:
    tg = time.perf_counter()
    data = Dataset(args, size)
    gen_s = time.perf_counter() - tg
    group_id = load_users(data)
    blob = common.session_blob(123456)
    print(
        f"## size: {len(data.members):,} users in group {GROUP!r} with {data.target_sessions:,} "
        f"sessions and {data.target_sessions:,} UserSession rows; {len(data.outsiders):,} "
        f"outsiders with {data.outsider_sessions:,} sessions (data generated in {gen_s:.1f} s, "
        f"session_data {len(blob)} chars)",
        flush=True,
    )
    lines: list[tuple[str, str]] = []
    n = data.target_sessions
    tag = f"{len(data.members) // 1000}k users"
    unknown = set(args.baseline_kinds) - {"raw", "page"}
    if unknown:
        raise SystemExit(f"unknown baseline(s) {sorted(unknown)}")
    raw_rate = None
    if "raw" in args.baseline_kinds:
        load_s = load_sessions(data, blob)
        elapsed, deleted = baseline_raw(data)
        assert deleted == n, ("raw", deleted, n)
        check_outcome(data, "baseline raw")
        raw_rate = n / elapsed
        label = f"[{tag}] baseline raw, {RAW_BATCH} keys/tx"
        text = f"{elapsed:.2f} s, {raw_rate:,.0f} sessions/s (load {load_s:.1f} s)"
        print(f"{label:<44} {text}", flush=True)
        lines.append((label, text))
    # Each end-to-end run right after its own page-SQL baseline: on a shared machine the
    # load drifts by minutes, so a pair measured together gives the steadier ratio.
    for batch in args.batches:
        ratios = []
        for _ in range(args.rounds):
            page_rate = None
            if "page" in args.baseline_kinds:
                load_s = load_sessions(data, blob)
                elapsed, deleted = baseline_page(data, group_id, batch)
                assert deleted == n, ("page", deleted, n)
                check_outcome(data, "baseline page")
                page_rate = n / elapsed
                label = f"[{tag}] baseline page SQL, {batch} users/tx"
                text = f"{elapsed:.2f} s, {page_rate:,.0f} sessions/s (load {load_s:.1f} s)"
                if raw_rate:
                    text += f", {page_rate / raw_rate:.2f}x raw"
                print(f"{label:<44} {text}", flush=True)
                lines.append((label, text))
            if args.profile:
                load_s = load_sessions(data, blob)
                lines.extend(profile(data, batch, tag, raw_rate, page_rate))
                continue
            one_rate = None
            for workers in args.worker_counts:
                load_s = load_sessions(data, blob)
                rate = one_run(
                    args, env, data, batch, workers, tag, raw_rate, page_rate, load_s, lines
                )
                if workers == 1:
                    if page_rate:
                        ratios.append(rate / page_rate)
                    one_rate = rate
                elif one_rate:
                    speedup = rate / one_rate
                    label = f"[{tag}] {workers} workers / 1 worker, batch {batch}"
                    text = (
                        f"{speedup:.2f}x ({rate:,.0f} vs {one_rate:,.0f} sessions/s, same round); "
                        f"target >= {TARGET_FANOUT_SPEEDUP:.1f}x at 2: "
                        f"{'MEETS' if speedup >= TARGET_FANOUT_SPEEDUP else 'MISSES'}"
                    )
                    print(f"{label:<44} {text}", flush=True)
                    lines.append((label, text))
        if len(ratios) > 1:
            label = f"[{tag}] end-to-end / page SQL, batch {batch}"
            median = statistics.median(ratios)
            text = (
                f"median {median:.0%} over {len(ratios)} pairs "
                f"({', '.join(f'{r:.0%}' for r in ratios)}); target >= {TARGET_PAGE_RATIO:.0%}: "
                f"{'MEETS' if median >= TARGET_PAGE_RATIO else 'MISSES'}"
            )
            print(f"{label:<44} {text}", flush=True)
            lines.append((label, text))
    return lines


rss_by_batch: dict[int, list[tuple[int, float]]] = {}


def one_run(
    args: argparse.Namespace,
    env: dict[str, str],
    data: Dataset,
    batch: int,
    workers: int,
    tag: str,
    raw_rate: float | None,
    page_rate: float | None,
    load_s: float,
    lines: list[tuple[str, str]],
) -> float:
    """Run one end-to-end revocation with `workers` workers, print it; return sessions/s."""
    n = data.target_sessions
    result = end_to_end(args, env, data, batch, workers)
    assert result["revoked"] == n, (result["revoked"], n)
    rate = n / result["elapsed"]
    ratio = f", {rate / raw_rate:.0%} of raw" if raw_rate else ""
    page_ratio = ""
    if page_rate:
        page_ratio = f", {rate / page_rate:.0%} of page SQL (target >= {TARGET_PAGE_RATIO:.0%})"
    ok = (
        (raw_rate is None or rate >= TARGET_RATIO * raw_rate)
        and (page_rate is None or rate >= TARGET_PAGE_RATIO * page_rate)
        and result["peak_mb"] < TARGET_RSS_MB
    )
    label = f"[{tag}] end-to-end, batch {batch} users/page"
    if workers > 1:
        label += f", {workers} workers ({result['parts']} parts)"
    text = (
        f"{result['elapsed']:.2f} s request->done, {rate:,.0f} sessions/s"
        f"{ratio}{page_ratio}; worker peak RSS {result['peak_mb']:.0f} MB (idle "
        f"{result['idle_mb']:.0f} MB, main {result['main_peak_mb']:.0f} MB); handler "
        f"{result['handler'] * 1000:.1f} ms; {'MEETS' if ok else 'MISSES'} target "
        f"(load {load_s:.1f} s)"
    )
    if not result["same_child"]:
        text += " [pool child was replaced: RSS is of the first child only]"
    print(f"{label:<44} {text}", flush=True)
    lines.append((label, text))
    if workers == 1:
        rss_by_batch.setdefault(batch, []).append((len(data.members), result["peak_mb"]))
    return rate


def profile(
    data: Dataset, batch: int, tag: str, raw_rate: float | None, page_rate: float | None
) -> list[tuple[str, str]]:
    """Run the worker's service (run_request) here, timing SQL by statement shape."""
    import re
    from collections import defaultdict

    from django.db import connection
    from django.test import override_settings

    from revocation import services
    from revocation.models import RevocationRequest

    stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    commits = [0, 0.0]
    db: Any = connection  # the wrapper's private _commit(): what atomic() ends with
    commit = db._commit

    def timed_commit() -> Any:
        t0 = time.perf_counter()
        try:
            return commit()
        finally:
            commits[0] += 1
            commits[1] += time.perf_counter() - t0

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            shape = re.sub(r"%s(, %s)+(, %)?", "...", sql[:400])
            shape = re.sub(r'"revocation_revocationrequest"\."\w+"(, )?', "", shape)
            entry = stats[shape[:150]]
            entry[0] += 1
            entry[1] += time.perf_counter() - t0

    # Fan-out off: the request's own pages, all in this process.
    with override_settings(REVOCATION_BATCH_SIZE=batch, REVOCATION_FANOUT_WIDTH=1):
        request = services.revoke_sessions(group=GROUP, reason="bench profile")
        t0 = time.perf_counter()
        db._commit = timed_commit
        try:
            with connection.execute_wrapper(timed):
                while services.run_request(request.pk, budget_seconds=3600):
                    pass
        finally:
            del db._commit  # back to the class's method
        elapsed = time.perf_counter() - t0
    request.refresh_from_db()
    check_outcome(data, f"profile batch {batch}")
    in_sql = sum(total for _, total in stats.values())
    label = f"[{tag}] profile in-process, batch {batch}"
    ratio = f", {data.target_sessions / elapsed / raw_rate:.0%} of raw" if raw_rate else ""
    if page_rate:
        ratio += f", {data.target_sessions / elapsed / page_rate:.0%} of page SQL"
    text = (
        f"{elapsed:.2f} s, {data.target_sessions / elapsed:,.0f} sessions/s{ratio}; "
        f"{in_sql:.2f} s in SQL execute, {commits[1]:.2f} s in {commits[0]} COMMITs, "
        f"{elapsed - in_sql - commits[1]:.2f} s in Python (ORM, driver, the service)"
    )
    print(f"{label:<44} {text}", flush=True)
    for shape, (count, total) in sorted(stats.items(), key=lambda kv: -kv[1][1]):
        print(f"    {total:7.2f} s {int(count):6d}x  {shape}", flush=True)
    RevocationRequest.objects.filter(pk=request.pk).delete()
    return [(label, text)]


def flatness(args: argparse.Namespace, results: list[list[tuple[str, str]]]) -> None:
    for batch, points in rss_by_batch.items():
        (small, small_mb), (big, big_mb) = points[0], points[-1]
        common.line(
            f"worker peak RSS growth, batch {batch}",
            f"{small:,} -> {big:,} users ({big / small:.1f}x): {small_mb:.0f} -> {big_mb:.0f} MB "
            f"({big_mb / small_mb:.2f}x)",
        )


if __name__ == "__main__":
    main()
