"""A revocation page through the service against the same page as bare SQL, interleaved.

bench/bulk_revoke.py compares a whole end-to-end run with a whole page-SQL run made a
minute before it; on a shared machine the load drifts by more than the difference.
Here both run in this process, page for page, on the same data: the group's members
alternate between two groups, A and B; a page of A goes through the worker's own
service (`services.run_request(..., budget_seconds=0)`: the row lock, the target's
page of users, the one-statement delete, the progress saved, the commit), then a page
of B as bare SQL (bulk_revoke.py's "page SQL": the next page of member ids, one
`WITH m AS (DELETE ... RETURNING session_key) DELETE ... USING m`, the commit), and
so on until both are done. Same users per page, same sessions per user, same moment.
The figure is the service's time over the bare time (target: the service's throughput
>= 80% of the bare SQL's, i.e. this ratio <= 1.25), with the service's time split
into SQL statements by shape, COMMITs and Python.

    .venv/bin/python bench/page_cost.py                       # 100,000 users, 1000 and 5000
    .venv/bin/python bench/page_cost.py --users 20000 --batch-sizes 1000

PostgreSQL only (the bare statement is PostgreSQL's); the database is our own (--db-name).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402
import bulk_revoke  # noqa: E402

TARGET_RATIO = 0.8  # service throughput / bare throughput


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="members of both groups")
    parser.add_argument("--batch-sizes", default="1000,5000", help="users per page")
    parser.add_argument("--sessions-per-user", type=int, default=5)
    parser.add_argument("--outsider-every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--pg", default=common.default_server(), help="PostgreSQL server URL")
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", common.DEFAULT_REDIS))
    parser.add_argument("--db-name", default="revocation_bench_page_cost")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    args = parser.parse_args()
    args.batches = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    if common.is_mysql(args.pg):
        raise SystemExit("page_cost.py runs on PostgreSQL only")
    return args


def main() -> None:
    args = parse_args()
    env = common.configure(
        tag="page-cost", server_url=args.pg, db_name=args.db_name, redis_url=args.redis
    )
    common.header(
        "page_cost: a revocation page through the service vs the same page as bare SQL",
        users=f"{args.users:,} members, alternating between groups A (service) and B (bare)",
        sessions_per_user=args.sessions_per_user,
        users_per_page=", ".join(str(b) for b in args.batches),
        database=env["DATABASE_URL"],
        target=f"service throughput >= {TARGET_RATIO:.0%} of the bare SQL's, page for page",
        load_average=", ".join(f"{x:.2f}" for x in os.getloadavg()),
    )
    common.create_database(args.pg, args.db_name)
    started = time.monotonic()
    lines = []
    try:
        common.setup_django()
        data = bulk_revoke.Dataset(args, args.users)
        groups = load_groups(data)
        blob = common.session_blob(123456)
        for batch in args.batches:
            bulk_revoke.load_sessions(data, blob)
            lines.append(run(data, groups, batch))
        print("## summary", flush=True)
        for label, text in lines:
            common.line(label, text)
        common.line("load average (1, 5, 15 min)", ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    finally:
        if not args.keep_db:
            common.drop_database(args.pg, args.db_name)
    print(f"# wall time {time.monotonic() - started:.0f} s", flush=True)


def load_groups(data: Any) -> dict[str, int]:
    """Users as bulk_revoke.py loads them; members alternate between groups A and B."""
    from django.contrib.auth.models import Group

    bulk_revoke.load_users(data)
    ids = {name: Group.objects.create(name=name).pk for name in ("A", "B")}
    with common.connect() as conn, conn.cursor() as cur:
        rows = ((uid, ids["AB"[i % 2]]) for i, uid in enumerate(data.members))
        common.bulk_load(cur, "auth_user_groups", "user_id, group_id", rows)
    return ids


def bare_page(cur: Any, group_id: int, after: int, batch: int) -> int | None:
    """One page of B as bulk_revoke.py's page SQL; return its last user id (None: done)."""
    cur.execute(
        "SELECT user_id FROM auth_user_groups WHERE group_id = %s AND user_id > %s "
        "ORDER BY user_id LIMIT %s",
        [group_id, after, batch],
    )
    ids = [row[0] for row in cur.fetchall()]
    if ids:
        cur.execute(
            "WITH m AS (DELETE FROM revocation_usersession WHERE user_id = ANY(%s) "
            "RETURNING session_key) "
            "DELETE FROM django_session s USING m WHERE s.session_key = m.session_key",
            [ids],
        )
    cur.connection.commit()
    return ids[-1] if ids else None


def run(data: Any, groups: dict[str, int], batch: int) -> tuple[str, str]:
    """Alternate a service page of A and a bare page of B until both groups are done."""
    from django.db import connection
    from django.test import override_settings

    from revocation import services

    stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    commits = [0.0]
    db: Any = connection  # the wrapper's private _commit(): what atomic() ends with
    commit = db._commit

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            shape = re.sub(r'"revocation_revocationrequest"\."\w+"(, )?', "", sql[:300])
            stats[shape[:110]][0] += 1
            stats[shape[:110]][1] += time.perf_counter() - t0

    def timed_commit() -> Any:
        t0 = time.perf_counter()
        try:
            return commit()
        finally:
            commits[0] += time.perf_counter() - t0

    service: list[float] = []
    bare: list[float] = []
    # One task, no fan-out into key ranges: the pages of one request, one after another.
    one_task = override_settings(REVOCATION_BATCH_SIZE=batch, REVOCATION_FANOUT_WIDTH=1)
    with one_task, common.connect() as conn:
        request = services.revoke_sessions(group="A", reason="bench page cost")
        more = True
        after: int | None = 0
        db._commit = timed_commit
        try:
            with conn.cursor() as cur, connection.execute_wrapper(timed):
                while more or after is not None:
                    if more:
                        t0 = time.perf_counter()
                        more = services.run_request(request.pk, budget_seconds=0)
                        service.append(time.perf_counter() - t0)
                    if after is not None:
                        t0 = time.perf_counter()
                        after = bare_page(cur, groups["B"], after, batch)
                        bare.append(time.perf_counter() - t0)
        finally:
            del db._commit  # back to the class's method
    request.refresh_from_db()
    assert request.state == "done", request.state
    bulk_revoke.check_outcome(data, f"page cost, batch {batch}")

    # The last call of each finds nothing left (the service also finishes the request).
    ratio = sum(bare) / sum(service)
    in_sql = sum(total for _, total in stats.values())
    label = f"service / bare SQL, batch {batch}"
    text = (
        f"{len(service)} service pages {sum(service):.2f} s, {len(bare)} bare pages "
        f"{sum(bare):.2f} s: throughput {ratio:.0%} of the bare SQL's (median page "
        f"{statistics.median(service) * 1000:.0f} vs {statistics.median(bare) * 1000:.0f} ms); "
        f"target >= {TARGET_RATIO:.0%}: {'MEETS' if ratio >= TARGET_RATIO else 'MISSES'}"
    )
    print(f"{label:<44} {text}", flush=True)
    print(
        f"    service time: {in_sql:.2f} s in SQL statements, {commits[0]:.2f} s in COMMITs, "
        f"{sum(service) - in_sql - commits[0]:.2f} s in Python",
        flush=True,
    )
    for shape, (count, total) in sorted(stats.items(), key=lambda kv: -kv[1][1])[:6]:
        print(f"    {total:7.2f} s {int(count):5d}x  {shape}", flush=True)
    return label, text


if __name__ == "__main__":
    main()
