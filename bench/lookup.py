"""All live sessions of one user, at 1M sessions or more: the lookup and the sessions page.

Data: --sessions N sessions (default 1,000,000; --sessions 10000000 works too) with
a UserSession row each, spread over about N / 5 users: most users hold 1-8 sessions,
1% hold 20-60, and ten "service" users hold --heavy-sessions each. Logins arrive in
random order, so a user's rows are scattered over both tables; --expired-share of
the sessions have expired but are not cleared yet (their mappings must not be
listed). Loaded with COPY (bench/_common.py), then VACUUM ANALYZE and CHECKPOINT.

Measured, for --samples users drawn uniformly (each once, interleaved, so noise hits
every figure alike), after a warm-up on other users:
- lookup:   `list(selectors.sessions_for_user(user))`, the query every face uses;
- page:     the `/sessions/` view (`views.sessions_page`) called with a
            RequestFactory request of the logged-in user, template rendered;
- baseline: a bare primary-key SELECT of a random UserSession row on the same
            connection (the noise floor of one round trip to a random heap page).
Then the ten service users (--heavy-sessions each), and the query plans
(PostgreSQL: EXPLAIN (ANALYZE, BUFFERS); MariaDB: ANALYZE) of a typical and a service user.
Target: p99 < 2 ms for the lookup (issue 15); the page is held to it too.

    .venv/bin/python bench/lookup.py                          # 1M sessions
    .venv/bin/python bench/lookup.py --sessions 10000000      # 10M (loads for ~10 min)
    .venv/bin/python bench/lookup.py --keep-db                # then --reuse to skip the load

The server is --pg, else BENCH_PG_URL, else DATABASE_URL's server (postgres:// or
mysql://), else the local PostgreSQL; the database is our own (--db-name).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from array import array
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402

TARGET_P99_MS = 2.0
SERVICE_USERS = 10
UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Edg/126.0 Safari/537.36",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--heavy-sessions", type=int, default=1000, help="per service user")
    parser.add_argument("--expired-share", type=float, default=0.1)
    parser.add_argument("--samples", type=int, default=3000, help="users measured")
    parser.add_argument("--warmup", type=int, default=300, help="users looked up first, untimed")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--pg", default=common.default_server(), help="server URL, postgres:// or mysql://"
    )
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", common.DEFAULT_REDIS))
    parser.add_argument("--db-name", default="revocation_bench_lookup")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the loaded data of an earlier --keep-db run"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    env = common.configure(
        tag="lookup", server_url=args.pg, db_name=args.db_name, redis_url=args.redis
    )
    common.header(
        f"lookup: all live sessions of one user, {common.vendor(args.pg)}",
        sessions=f"{args.sessions:,} ({args.expired_share:.0%} expired, not cleared yet)",
        users="about sessions / 5: most 1-8 sessions, 1% 20-60, "
        f"{SERVICE_USERS} service users with {args.heavy_sessions:,}",
        samples=f"{args.samples:,} users drawn uniformly, each once (after {args.warmup} untimed)",
        database=env["DATABASE_URL"],
        target=f"p99 < {TARGET_P99_MS} ms",
        load_average=", ".join(f"{x:.2f}" for x in os.getloadavg()),
    )
    started = time.monotonic()
    if not args.reuse:
        common.create_database(args.pg, args.db_name)
    try:
        common.setup_django()
        data = Dataset(args)
        if args.reuse:
            print(f"## reusing the loaded data ({count_rows():,} mappings)", flush=True)
        else:
            load(data)
        measure(args, data)
    finally:
        if not args.keep_db:
            common.drop_database(args.pg, args.db_name)
    print(f"# wall time {time.monotonic() - started:.0f} s", flush=True)


# --- Data --------------------------------------------------------------------------------


class Dataset:
    """Deterministic users and logins: counts per user, then logins in random order."""

    def __init__(self, args: argparse.Namespace) -> None:
        rng = random.Random(args.seed)
        self.seed = args.seed
        self.expired_share = args.expired_share
        heavy = args.heavy_sessions if args.sessions >= 100 * args.heavy_sessions else 0
        counts = array("l", [heavy] * SERVICE_USERS if heavy else [])
        total = sum(counts)
        while total < args.sessions:
            n = rng.randint(20, 60) if rng.random() < 0.01 else rng.randint(1, 8)
            n = min(n, args.sessions - total)
            counts.append(n)
            total += n
        self.counts = counts
        self.user_ids = range(1, len(counts) + 1)
        self.service_users = list(range(1, SERVICE_USERS + 1)) if heavy else []
        self.total = total

    def logins(self) -> array[int]:
        """Return the user id of each login, in the (random) order they signed in."""
        order = array(
            "l", (uid for uid, n in zip(self.user_ids, self.counts, strict=True) for _ in range(n))
        )
        random.Random(self.seed + 1).shuffle(order)  # type: ignore[arg-type]
        return order

    def rows(self, order: array[int]) -> Iterator[tuple[int, int, str, bool]]:
        """Yield (login number, user id, session key, expired) for every login, the same every time."""
        rng = random.Random(self.seed + 2)
        for i, uid in enumerate(order):
            key = f"{rng.getrandbits(128):032x}"
            yield i, uid, key, rng.random() < self.expired_share


def load(data: Dataset) -> None:
    """Users, sessions and their mappings, by COPY (multi-row INSERTs on MySQL)."""
    t0 = time.perf_counter()
    order = data.logins()
    now = datetime.now(UTC)
    base = now - timedelta(days=13)
    blob = common.session_blob(1)
    with common.connect() as conn:
        with conn.cursor() as cur:
            common.truncate(
                cur, ["auth_user_groups", "auth_user", "django_session", "revocation_usersession"]
            )
            common.load_users(cur, data.user_ids, now)
            common.bulk_load(
                cur,
                "django_session",
                "session_key, session_data, expire_date",
                (
                    (
                        key,
                        blob,
                        now - timedelta(hours=1) if expired else now + timedelta(days=1 + i % 13),
                    )
                    for i, _, key, expired in data.rows(order)
                ),
            )
            print(f"#   sessions loaded in {time.perf_counter() - t0:.0f} s", flush=True)
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
                        UAS[i % len(UAS)],
                        "",
                        # No stored description, as rows from before it: the page
                        # describes their user agent (the dearer path).
                        "",
                        "",
                        "",
                    )
                    for i, uid, key, _ in data.rows(order)
                    for at in [base + timedelta(milliseconds=i)]
                ),
            )
        common.analyze(conn, ["django_session", "revocation_usersession", "auth_user"])
    print(
        f"## loaded {data.total:,} sessions and mappings of {len(data.counts):,} users "
        f"in {time.perf_counter() - t0:.0f} s",
        flush=True,
    )


def count_rows() -> int:
    from revocation.models import UserSession

    return UserSession.objects.count()


# --- Measuring ---------------------------------------------------------------------------


def measure(args: argparse.Namespace, data: Dataset) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connection
    from django.test import RequestFactory

    from revocation import selectors, views

    user_model = get_user_model()
    factory = RequestFactory()
    rng = random.Random(args.seed + 3)
    max_mapping = 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM revocation_usersession")
        max_mapping = int(cursor.fetchone()[0])

    def user(uid: int) -> Any:
        return user_model(pk=uid, username=f"user{uid}")

    def baseline() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT * FROM revocation_usersession WHERE id = %s", [rng.randint(1, max_mapping)]
            )
            cursor.fetchall()

    def lookup(uid: int) -> list[Any]:
        return list(selectors.sessions_for_user(user(uid)))

    def page(uid: int, current: str | None) -> None:
        request = factory.get("/sessions/")
        request.user = user(uid)
        request.session = SessionStore(current)
        response = views.sessions_page(request)
        assert response.status_code == 200, response.status_code

    # Uniform over users (service users included, at their share of users).
    sample = rng.sample(data.user_ids, min(len(data.user_ids), args.samples + args.warmup))
    warm, timed = sample[: args.warmup], sample[args.warmup :]
    for uid in warm:
        baseline()
        rows = lookup(uid)
        page(uid, rows[0].session_key if rows else None)

    times: dict[str, list[float]] = {"baseline": [], "lookup": [], "page": [], "cpu": []}
    # The lookup by the user's stored sessions: p99 of all users sits among the 1% with 20+.
    by_size: dict[str, list[float]] = {"1-8": [], "20+": []}
    listed = 0
    for uid in timed:
        t0 = time.perf_counter()
        baseline()
        t1, c1 = time.perf_counter(), time.process_time()
        rows = lookup(uid)
        t2, c2 = time.perf_counter(), time.process_time()
        page(uid, rows[0].session_key if rows else None)
        t3 = time.perf_counter()
        times["baseline"].append(t1 - t0)
        times["lookup"].append(t2 - t1)
        times["page"].append(t3 - t2)
        times["cpu"].append(c2 - c1)
        listed += len(rows)
        by_size["1-8" if data.counts[uid - 1] <= 8 else "20+"].append(t2 - t1)

    heavy: list[float] = []
    for uid in data.service_users:
        t0 = time.perf_counter()
        rows = lookup(uid)
        heavy.append(time.perf_counter() - t0)

    print("## plans", flush=True)
    typical = next(u for u in timed if 4 <= data.counts[u - 1] <= 6)
    explain(user(typical), f"user {typical} ({data.counts[typical - 1]} sessions)")
    if data.service_users:
        uid = data.service_users[0]
        explain(user(uid), f"service user {uid} ({data.counts[uid - 1]:,} sessions)")

    print("## summary", flush=True)
    base = times["baseline"]
    common.line("baseline: bare primary-key SELECT", quantiles(base))
    for name, label in [
        ("lookup", "lookup: sessions_for_user()"),
        ("page", "page: /sessions/ view (RequestFactory)"),
    ]:
        values = times[name]
        p99 = common.percentile(values, 99) * 1000
        verdict = "MEETS" if p99 < TARGET_P99_MS else "MISSES"
        common.line(
            label,
            f"{quantiles(values)}; {p99 / (common.percentile(base, 99) * 1000):.1f}x baseline p99; "
            f"target p99 < {TARGET_P99_MS} ms: {verdict}",
        )
    common.line(
        "lookup: CPU of this process (ORM, driver)",
        f"{quantiles(times['cpu'])}: the part no other process's load inflates",
    )
    for size, values in by_size.items():
        if values:
            common.line(f"lookup: users with {size} sessions", quantiles(values))
    common.line("rows listed per lookup", f"mean {listed / len(timed):.1f} (expired ones left out)")
    common.line("load average (1, 5, 15 min)", ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    if heavy:
        common.line(
            f"service users ({args.heavy_sessions:,} sessions each)",
            f"{quantiles(heavy)} (not part of the target)",
        )


def quantiles(values: list[float]) -> str:
    """Return 'p50 X ms, p99 Y ms, max Z ms (n=...)' for durations in seconds."""
    ms = [v * 1000 for v in values]
    return (
        f"p50 {common.percentile(ms, 50):.2f} ms, p99 {common.percentile(ms, 99):.2f} ms, "
        f"max {max(ms):.2f} ms (n={len(ms)})"
    )


def explain(user: Any, label: str) -> None:
    """Print the plan of `user`'s lookup, as executed."""
    from django.db import connection

    from revocation import selectors

    sql, params = selectors.sessions_for_user(user).query.sql_with_params()
    prefix = "ANALYZE " if connection.vendor == "mysql" else "EXPLAIN (ANALYZE, BUFFERS) "
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql, params)
        rows = cursor.fetchall()
    print(f"# plan of the lookup for {label}:", flush=True)
    for row in rows:
        print("    " + " | ".join(str(col) for col in row), flush=True)


if __name__ == "__main__":
    main()
