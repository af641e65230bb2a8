"""clearsessions at scale on PostgreSQL or MariaDB: ours against Django's clear_expired().

For each size N (sessions, of which --expired-frac expired, in random expire_date
order; plus N * --mapping-frac UserSession rows on randomly chosen sessions and
N / 200 mapping rows whose session is already gone):
- django: `SessionStore.clear_expired()` (db engine): one DELETE in one
  transaction; it leaves every orphaned mapping behind;
- django+orphans: the same, then one unbatched anti-join DELETE of the orphaned
  mappings: the end state ours reaches, the fastest way, with no batching at all;
- ours:   `revocation.maintenance.clearsessions()` (the body of our
  `manage.py clearsessions`): expired sessions by ctid batches, then orphaned
  mappings (one read-only anti-join, then deletes by id), each batch its own
  transaction of at most REVOCATION_MAINTENANCE_BATCH_SIZE rows.
Each variant gets a fresh load of the same data (PostgreSQL: COPY, VACUUM ANALYZE,
CHECKPOINT; MySQL: multi-row INSERTs, ANALYZE TABLE) and runs in a fresh child process; figures: wall time of the work, peak RSS
(VmHWM of that child, from /proc/self/status), the longest step between two
commits (an upper bound of the longest transaction), and the latency of logins
made concurrently by another process (Django test Client force_login: session
INSERT + mapping INSERT) while the work runs, against the same logins just
before it.

    .venv/bin/python bench/clearsessions.py             # 50,000 and 100,000 sessions
    .venv/bin/python bench/clearsessions.py --full      # 500,000 and 1,000,000 sessions
    .venv/bin/python bench/clearsessions.py --sizes 200000 --variants ours
    DATABASE_URL=mysql://root@127.0.0.1:3306/x .venv/bin/python bench/clearsessions.py

Uses a database of its own (--db-name, created and dropped here); nothing else. The
server is --pg, else BENCH_PG_URL, else DATABASE_URL's server (postgres:// or mysql://),
else the local PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402

TARGET_RSS_MB = 120.0
TARGET_FLAT = 0.10
TARGET_RATIO = 1.2
USERS = 2000
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,100000", help="comma-separated session counts")
    parser.add_argument("--full", action="store_true", help="sizes 500000,1000000 (the target)")
    parser.add_argument("--expired-frac", type=float, default=0.9)
    parser.add_argument("--mapping-frac", type=float, default=0.5)
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="REVOCATION_MAINTENANCE_BATCH_SIZE (default: the app's, 10000)",
    )
    parser.add_argument("--variants", default="django,django+orphans,ours")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--pg", default=common.default_server(), help="server URL, postgres:// or mysql://"
    )
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", common.DEFAULT_REDIS))
    parser.add_argument("--db-name", default="revocation_bench_clear")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.full:
        args.sizes = "500000,1000000"
    args.size_list = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.variant_list = [v.strip() for v in args.variants.split(",") if v.strip()]
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        child(args.child, Path(args.out))
        return
    env = common.configure(
        tag="clear",
        server_url=args.pg,
        db_name=args.db_name,
        redis_url=args.redis,
    )
    # Our own cache namespace on the shared Redis (nothing should land there, but still).
    env["CACHE_KEY_PREFIX"] = f"bench-clear-{os.getpid()}"
    if args.batch:
        env["REVOCATION_MAINTENANCE_BATCH_SIZE"] = str(args.batch)
    os.environ.update(env)
    common.header(
        "clearsessions: ours (batched, prunes mappings) vs Django's SessionStore.clear_expired(), "
        + common.vendor(args.pg),
        sizes_sessions=", ".join(f"{s:,}" for s in args.size_list),
        expired=f"{args.expired_frac:.0%} of sessions, random expire_date order",
        mappings=f"{args.mapping_frac:.0%} of sessions get a UserSession row, + N/200 whose "
        "session is gone",
        batch_size=args.batch or "the app's REVOCATION_MAINTENANCE_BATCH_SIZE (10000)",
        variants=", ".join(args.variant_list),
        measuring="a fresh child process per variant and size; wall time of the work, VmHWM",
        concurrent_logins="one process logging in (force_login) in a loop during each run",
        database=env["DATABASE_URL"],
        targets=f"peak RSS < {TARGET_RSS_MB:.0f} MB and within {TARGET_FLAT:.0%} between "
        f"sizes; wall <= {TARGET_RATIO}x Django's",
    )
    common.create_database(args.pg, args.db_name)
    started = time.monotonic()
    results: dict[tuple[int, str], dict[str, Any]] = {}
    try:
        common.setup_django()
        for size in args.size_list:
            for variant in args.variant_list:
                results[size, variant] = run_one(args, env, size, variant)
                report(size, variant, results[size, variant])
        summarise(args, results)
    finally:
        if not args.keep_db:
            common.drop_database(args.pg, args.db_name)
    print(f"# wall time {time.monotonic() - started:.0f} s", flush=True)


# --- Data --------------------------------------------------------------------------------


def load(args: argparse.Namespace, size: int) -> dict[str, int]:
    """Load users, sessions and mappings, then refresh statistics (common.analyze)."""
    rng = random.Random(args.seed + size)
    now = datetime.now(UTC)
    blobs = [common.session_blob(u) for u in range(1, 65)]
    expired_n = int(size * args.expired_frac)
    # Expiry is random on disk: rows are written in login order, not expiry order.
    flags = [True] * expired_n + [False] * (size - expired_n)
    rng.shuffle(flags)
    keys = [f"{rng.getrandbits(160):040x}"[:32] for _ in range(size)]
    mapped = rng.sample(range(size), int(size * args.mapping_frac))
    gone = size // 200
    expires = [
        now
        + timedelta(
            seconds=-rng.randint(60, 14 * 86400) if expired else rng.randint(3600, 14 * 86400)
        )
        for expired in flags
    ]
    mapping_rows = [
        (1 + i % USERS, keys[i], at, at, "10.0.0.1", UA, "")
        for n, i in enumerate(mapped)
        for at in [now - timedelta(seconds=n % 86400)]
    ] + [(1 + n % USERS, f"gone{n:028d}", now, now, "10.0.0.2", UA, "") for n in range(gone)]
    with common.connect() as conn:
        with conn.cursor() as cur:
            common.truncate(
                cur,
                [
                    "auth_user",
                    "django_session",
                    "revocation_usersession",
                    "revocation_revocationrequest",
                ],
            )
            common.load_users(cur, range(1, USERS + 1), now)
            common.bulk_load(
                cur,
                "django_session",
                "session_key, session_data, expire_date",
                ((key, blobs[i % 64], expires[i]) for i, key in enumerate(keys)),
            )
            common.bulk_load(
                cur,
                "revocation_usersession",
                "user_id, session_key, created_at, last_seen_at, ip, user_agent, login_id",
                mapping_rows,
            )
        common.analyze(conn, ["auth_user", "django_session", "revocation_usersession"])
    live_mapped = sum(1 for i in mapped if not flags[i])
    return {
        "sessions": size,
        "expired": expired_n,
        "mappings": len(mapped) + gone,
        "orphans": len(mapped) - live_mapped + gone,
        "live_mappings": live_mapped,
    }


def state() -> dict[str, int]:
    """Count what is left: expired and live sessions, mappings, orphaned mappings."""
    now = datetime.now(UTC)
    with common.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT (SELECT count(*) FROM django_session WHERE expire_date < %s), "
            "(SELECT count(*) FROM django_session WHERE expire_date >= %s), "
            "(SELECT count(*) FROM revocation_usersession), "
            "(SELECT count(*) FROM revocation_usersession m WHERE NOT EXISTS ("
            "SELECT 1 FROM django_session s WHERE s.session_key = m.session_key "
            "AND s.expire_date > %s))",
            [now, now, now],
        )
        row = cur.fetchone()
    return dict(zip(("expired", "live", "mappings", "orphans"), row, strict=True))


# --- One measured run ---------------------------------------------------------------------


def run_one(
    args: argparse.Namespace, env: dict[str, str], size: int, variant: str
) -> dict[str, Any]:
    """Load, start the login probe, run the variant in a fresh child, and check the result."""
    t0 = time.perf_counter()
    loaded = load(args, size)
    load_s = time.perf_counter() - t0
    work = Path(tempfile.mkdtemp(prefix="revocation-bench-clear-"))
    probe = subprocess.Popen(
        [sys.executable, __file__, "--child", "login", "--out", str(work / "login.json")],
        env={**os.environ, **env},
        cwd=common.ROOT,
    )
    try:
        common.wait_for(
            (work / "login.json.ready").exists, timeout=120, interval=0.05, what="login probe"
        )
        # A baseline of logins with nothing else running.
        time.sleep(2)
        measured = subprocess.run(
            [sys.executable, __file__, "--child", variant, "--out", str(work / "run.json")],
            env={**os.environ, **env},
            cwd=common.ROOT,
            check=True,
        )
        assert measured.returncode == 0
        time.sleep(1)
    finally:
        (work / "login.json.stop").touch()
        probe.wait(timeout=120)
    run = json.loads((work / "run.json").read_text())
    logins = json.loads((work / "login.json").read_text())
    during = [d for t, d in logins if run["start"] <= t <= run["end"]]
    idle = [d for t, d in logins if t < run["start"]]
    left = state()
    if left["expired"] != 0:
        raise AssertionError(f"{variant}: {left['expired']} expired sessions left")
    if variant != "django" and left["orphans"] != 0:
        raise AssertionError(f"{variant}: {left['orphans']} orphaned mappings left")
    return {
        **run,
        "load_s": load_s,
        "loaded": loaded,
        "left": left,
        "login_idle": idle,
        "login_during": during,
    }


def report(size: int, variant: str, r: dict[str, Any]) -> None:
    """Print the lines of one run."""
    tag = f"{variant} N={size:,}"
    deleted = r["loaded"]["expired"]
    common.line(
        f"{tag} wall",
        f"{r['wall']:.2f} s ({deleted / r['wall']:,.0f} expired sessions/s), "
        f"load {r['load_s']:.0f} s (not measured)",
    )
    if r["phases"]:
        common.line(
            f"{tag} phases",
            f"sessions {r['phases'].get('sessions', 0):.2f} s, "
            f"mappings {r['phases'].get('mappings', 0):.2f} s, "
            f"requests {r['phases'].get('requests', 0):.2f} s; "
            f"{r['batches']} batches"
            + (f"; summary {json.dumps(r['summary'], sort_keys=True)}" if r["summary"] else ""),
        )
    common.line(
        f"{tag} peak RSS",
        f"{r['hwm_mb']:.1f} MB (VmHWM; {r['rss_before_mb']:.1f} MB before the work)",
    )
    common.line(
        f"{tag} longest write step",
        f"{r['longest_tx']:.3f} s between two commits (read-only steps: up to "
        f"{r['longest_read']:.3f} s)",
    )
    if r["login_during"]:
        common.line(f"{tag} login during run", common.summary_ms(r["login_during"]))
    if r["login_idle"]:
        common.line(f"{tag} login before run", common.summary_ms(r["login_idle"]))
    left = r["left"]
    common.line(
        f"{tag} left",
        f"{left['expired']} expired, {left['live']:,} live sessions, {left['mappings']:,} "
        f"mappings of which {left['orphans']:,} orphaned (loaded "
        f"{r['loaded']['orphans']:,} orphans, {r['loaded']['live_mappings']:,} live)",
    )


def target(ratio: float) -> str:
    """Return whether `ratio` meets the wall-time target."""
    return f"target <= {TARGET_RATIO}x: {'met' if ratio <= TARGET_RATIO else 'MISSED'}"


def summarise(args: argparse.Namespace, results: dict[tuple[int, str], dict[str, Any]]) -> None:
    """Print ratios against the baselines' runs and the flatness of our peak RSS."""
    print("## summary", flush=True)
    for size in args.size_list:
        ours = results.get((size, "ours"))
        if ours is not None:
            common.line(
                f"ours N={size:,} peak RSS",
                f"{ours['hwm_mb']:.1f} MB (target < {TARGET_RSS_MB:.0f} MB: "
                f"{'met' if ours['hwm_mb'] < TARGET_RSS_MB else 'MISSED'})",
            )
        for name in ("django", "django+orphans"):
            base = results.get((size, name))
            if ours is None or base is None:
                continue
            ratio = ours["wall"] / base["wall"]
            verdict = target(ratio)
            common.line(
                f"ours/{name} N={size:,} wall",
                f"{ratio:.2f}x ({ours['wall']:.2f} s vs {base['wall']:.2f} s"
                + (f"; {verdict}" if name == "django" else "")
                + ")",
            )
            if name == "django":
                phase = ours["phases"].get("sessions", ours["wall"]) / base["wall"]
                common.line(
                    f"ours/django N={size:,} expired sessions only",
                    f"{phase:.2f}x ({ours['phases'].get('sessions', 0):.2f} s vs "
                    f"{base['wall']:.2f} s; {target(phase)})",
                )
            common.line(
                f"ours/{name} N={size:,} longest write step",
                f"{ours['longest_tx']:.3f} s vs {base['longest_tx']:.3f} s",
            )
            common.line(
                f"ours/{name} N={size:,} peak RSS",
                f"{ours['hwm_mb']:.1f} MB vs {base['hwm_mb']:.1f} MB",
            )
        for name in args.variant_list:
            r = results.get((size, name))
            if r and r["login_during"] and r["login_idle"]:
                idle = common.percentile(r["login_idle"], 50)
                common.line(
                    f"{name} N={size:,} concurrent login",
                    f"worst {max(r['login_during']) * 1000:.1f} ms during the run "
                    f"({(max(r['login_during']) - idle) * 1000:+.1f} ms on the idle median "
                    f"{idle * 1000:.1f} ms; {len(r['login_during'])} logins)",
                )
    sizes = [s for s in args.size_list if (s, "ours") in results]
    if len(sizes) > 1:
        small, big = results[sizes[0], "ours"], results[sizes[-1], "ours"]
        growth = big["hwm_mb"] / small["hwm_mb"] - 1
        common.line(
            f"ours peak RSS {sizes[0]:,} -> {sizes[-1]:,}",
            f"{small['hwm_mb']:.1f} -> {big['hwm_mb']:.1f} MB ({growth:+.1%}; target within "
            f"{TARGET_FLAT:.0%}: {'met' if abs(growth) <= TARGET_FLAT else 'MISSED'})",
        )


# --- Child processes ------------------------------------------------------------------------


def child(kind: str, out: Path) -> None:
    """Run one measured variant, or the login probe, and write JSON to `out`."""
    common.setup_django(migrate=False)
    if kind == "login":
        login_probe(out)
        return
    from django.db import connection

    connection.ensure_connection()
    rss_before = common.proc_memory_mb(os.getpid())["VmRSS"]
    marks: list[tuple[str, int, float]] = []
    start_wall, start = time.time(), time.perf_counter()
    summary: dict[str, Any] = {}
    if kind in ("django", "django+orphans"):
        from importlib import import_module

        from django.conf import settings

        import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
        if kind == "django+orphans":
            marks.append(("sessions", 1, time.perf_counter()))
            # No alias on the deleted table: MariaDB before 11.6 refuses one there.
            with connection.cursor() as cursor:
                cursor.execute(
                    "DELETE FROM revocation_usersession WHERE NOT EXISTS (SELECT 1 FROM "
                    "django_session s WHERE s.session_key = revocation_usersession.session_key "
                    "AND s.expire_date > %s)",
                    [datetime.now(UTC)],
                )
            marks.append(("mappings", 1, time.perf_counter()))
    else:
        from revocation import maintenance

        summary = maintenance.clearsessions(
            progress=lambda phase, done: marks.append((phase, done, time.perf_counter()))
        ).as_dict()
    end = time.perf_counter()
    memory = common.proc_memory_mb(os.getpid())
    # Each progress mark follows a committed batch: the gaps bound the transactions'
    # lengths. A mark that deleted nothing more ends a read-only step (the orphan
    # snapshot, or a range with no expired row).
    writes: list[float] = []
    reads = [0.0]
    previous_t, previous_done = start, dict[str, int]()
    for phase, done, t in marks:
        (writes if done > previous_done.get(phase, 0) else reads).append(t - previous_t)
        previous_t, previous_done[phase] = t, done
    phases: dict[str, float] = {}
    previous = start
    for phase in dict.fromkeys(p for p, _, _ in marks):
        last = max(t for p, _, t in marks if p == phase)
        phases[phase] = last - previous
        previous = last
    out.write_text(
        json.dumps(
            {
                "wall": end - start,
                "start": start_wall,
                "end": start_wall + (end - start),
                "hwm_mb": memory["VmHWM"],
                "rss_before_mb": rss_before,
                "longest_tx": max(writes or [end - start]),
                "longest_read": max(reads),
                "batches": len(marks),
                "phases": phases,
                "summary": summary,
            }
        )
    )


def login_probe(out: Path) -> None:
    """Log users in (a new session and mapping each) until told to stop; record latencies."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    users = list(get_user_model().objects.order_by("pk")[:200])
    stop, ready = out.with_suffix(".json.stop"), out.with_suffix(".json.ready")
    samples: list[tuple[float, float]] = []
    rng = random.Random(1)
    while not stop.exists():
        client = Client()
        at, t0 = time.time(), time.perf_counter()
        client.force_login(rng.choice(users))
        samples.append((at, time.perf_counter() - t0))
        ready.touch()
    out.write_text(json.dumps(samples))


if __name__ == "__main__":
    main()
