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
Each variant gets a fresh load of the same data, streamed in login order
(PostgreSQL: COPY into the bare tables, then the indexes and keys built, VACUUM
ANALYZE, CHECKPOINT; MySQL: multi-row INSERTs, ANALYZE TABLE) and runs in a fresh
child process; figures: wall time of the work, its CPU time (the child's and, on a
local PostgreSQL, its server backend's: unlike wall time, hardly moved by the other
loads of a shared machine), peak RSS (VmHWM of that child, from /proc/self/status), the steps between two commits (their longest is an upper bound
of the longest transaction), and the latency of logins made concurrently by another
process (Django test Client force_login: session INSERT + mapping INSERT) while the
work runs, against the same logins just before it. With several sizes, each
variant's time per million sessions and its growth against the smallest size
(linear in N: per-million time within TARGET_LINEAR; peak RSS within TARGET_FLAT).

    .venv/bin/python bench/clearsessions.py             # 50,000 and 100,000 sessions
    .venv/bin/python bench/clearsessions.py --full      # 500,000 and 1,000,000 sessions
    .venv/bin/python bench/clearsessions.py --sessions 1000000,10000000  # 20-25 min, 12 GB disk
    .venv/bin/python bench/clearsessions.py --sessions 200000 --variants ours
    DATABASE_URL=mysql://root@127.0.0.1:3306/x .venv/bin/python bench/clearsessions.py

Uses a database of its own (--db-name, created and dropped here); nothing else. The
server is --pg, else BENCH_PG_URL, else DATABASE_URL's server (postgres:// or mysql://),
else the local PostgreSQL.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402

TARGET_RSS_MB = 120.0
TARGET_FLAT = 0.05
TARGET_RATIO = 1.2
# Linear in N: the time per million sessions at the largest size at most this much above
# the smallest's (the machine is shared: a few percent is noise).
TARGET_LINEAR = 1.2
USERS = 2000
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sessions",
        "--sizes",
        dest="sizes",
        default="50000,100000",
        help="comma-separated session counts, smallest first (the first is the baseline of "
        "the per-million ratios), e.g. 1000000,10000000",
    )
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
        targets=f"peak RSS < {TARGET_RSS_MB:.0f} MB and within {TARGET_FLAT:.0%} of the "
        f"smallest size's; wall <= {TARGET_RATIO}x Django's; time per million sessions "
        f"<= {TARGET_LINEAR}x the smallest size's (linear in N)",
        machine_load=common.load_average(),
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
    print(
        f"# wall time {time.monotonic() - started:.0f} s; load average at the end "
        f"{common.load_average()}",
        flush=True,
    )


# --- Data --------------------------------------------------------------------------------


def load(args: argparse.Namespace, size: int) -> dict[str, int]:
    """Load users, sessions and mappings, then refresh statistics (common.analyze).

    Streamed: two flags a session in memory (10 MB each at 10M sessions), every row
    generated on the fly, twice from the same seed (once per COPY).
    """
    rng = random.Random(args.seed + size)
    now = datetime.now(UTC)
    blobs = [common.session_blob(u) for u in range(1, 65)]
    expired_n, mapped_n = int(size * args.expired_frac), int(size * args.mapping_frac)
    # Expiry is random on disk: rows are written in login order, not expiry order.
    expired = bytearray(b"\1") * expired_n + bytearray(size - expired_n)
    mapped = bytearray(b"\1") * mapped_n + bytearray(size - mapped_n)
    rng.shuffle(expired)
    rng.shuffle(mapped)
    row_seed = rng.getrandbits(64)

    def sessions() -> Iterator[tuple[str, datetime, int, int]]:
        """Yield (key, expire_date, expired, mapped) per session, in login order (flags 0 or 1)."""
        rows = random.Random(row_seed)
        for i in range(size):
            gone = expired[i]
            # random() rather than randint(): a twentieth of the cost, 10M times over.
            ahead = -60 - rows.random() * 14 * 86400 if gone else 3600 + rows.random() * 13 * 86400
            yield f"{rows.getrandbits(128):032x}", now + timedelta(seconds=ahead), gone, mapped[i]

    gone = size // 200
    # A login writes its session and its mapping together: mappings in login order too.
    mapping_rows = itertools.chain(
        (
            (1 + n % USERS, key, at, at, "10.0.0.1", UA, "", "", "", "")
            for n, key in enumerate(key for key, _, _, is_mapped in sessions() if is_mapped)
            for at in [now - timedelta(seconds=n % 86400)]
        ),
        (
            (1 + n % USERS, f"gone{n:028d}", now, now, "10.0.0.2", UA, "", "", "", "")
            for n in range(gone)
        ),
    )
    tables = ["django_session", "revocation_usersession"]
    with common.connect() as conn:
        with conn.cursor() as cur:
            common.truncate(cur, ["auth_user", *tables, "revocation_revocationrequest"])
            common.load_users(cur, range(1, USERS + 1), now)
            with common.indexes_deferred(cur, tables):
                common.bulk_load(
                    cur,
                    "django_session",
                    "session_key, session_data, expire_date",
                    ((key, blobs[n % 64], at) for n, (key, at, _, _) in enumerate(sessions())),
                )
                common.bulk_load(
                    cur,
                    "revocation_usersession",
                    "user_id, session_key, created_at, last_seen_at, ip, user_agent, login_id, "
                    "device, country, city",
                    mapping_rows,
                )
        common.analyze(conn, ["auth_user", *tables])
    live_mapped = sum(1 for i in range(size) if mapped[i] and not expired[i])
    return {
        "sessions": size,
        "expired": expired_n,
        "mappings": mapped_n + gone,
        "orphans": mapped_n - live_mapped + gone,
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
    common.line(f"{tag} CPU", cpu_text(r))
    common.line(
        f"{tag} longest write step",
        f"{r['longest_tx']:.3f} s between two commits (read-only steps: up to "
        f"{r['longest_read']:.3f} s)",
    )
    if len(r["write_steps"]) > 1 or any(n > 1 for *_, n in r["write_steps"].values()):
        common.line(
            f"{tag} write steps",
            "; ".join(
                f"{phase} p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {most * 1000:.0f} "
                f"ms (n={n})"
                for phase, (p50, p99, most, n) in r["write_steps"].items()
            ),
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
    scale(args, results)


def cpu_total(r: dict[str, Any]) -> float | None:
    """Return the CPU seconds of run `r`: the child's plus its server backend's (if seen)."""
    return None if r["server_cpu"] is None else r["cpu"] + r["server_cpu"]


def cpu_text(r: dict[str, Any], per: float = 1.0) -> str:
    """Return run `r`'s CPU time (divided by `per`) split between client and server."""
    total = cpu_total(r)
    if total is None:
        return f"client {r['cpu'] / per:.2f} s (the server's backend is not on this host)"
    return (
        f"{total / per:.2f} s (client {r['cpu'] / per:.2f} s, server backend "
        f"{r['server_cpu'] / per:.2f} s; parallel workers not counted)"
    )


def per_million(r: dict[str, Any]) -> str:
    """Return the wall time per million loaded sessions of run `r`, and its phases'."""
    millions = r["loaded"]["sessions"] / 1e6
    phases = ", ".join(f"{name} {t / millions:.2f} s" for name, t in r["phases"].items())
    return f"{r['wall'] / millions:.2f} s" + (f" ({phases})" if phases else "")


def scale(args: argparse.Namespace, results: dict[tuple[int, str], dict[str, Any]]) -> None:
    """Print each variant's time per million sessions, and how time and RSS grow with N."""
    print("## scale: time per million sessions, growth against the smallest size", flush=True)
    for name in args.variant_list:
        sizes = [s for s in args.size_list if (s, name) in results]
        for size in sizes:
            r = results[size, name]
            common.line(
                f"{name} N={size:,} per million",
                f"{per_million(r)}; load {r['load_s'] / (size / 1e6):.0f} s (not measured)",
            )
            common.line(f"{name} N={size:,} CPU per million", cpu_text(r, size / 1e6))
        small = sizes[0] if sizes else 0
        for size in sizes[1:]:
            a, b = results[small, name], results[size, name]
            times = b["wall"] / a["wall"]
            linear = times / (size / small)
            # The targets are ours; a baseline's growth is printed for comparison.
            verdict = "met" if linear <= TARGET_LINEAR else "MISSED"
            common.line(
                f"{name} {small:,} -> {size:,} time",
                f"{times:.2f}x for {size / small:.0f}x the sessions ({a['wall']:.2f} -> "
                f"{b['wall']:.2f} s; per million {linear:.2f}x"
                + (f", target <= {TARGET_LINEAR}x: {verdict})" if name == "ours" else ")"),
            )
            small_cpu, big_cpu = cpu_total(a), cpu_total(b)
            if small_cpu and big_cpu is not None:
                # CPU time hardly depends on what else the machine runs; wall time does.
                linear = big_cpu / small_cpu / (size / small)
                verdict = "met" if linear <= TARGET_LINEAR else "MISSED"
                common.line(
                    f"{name} {small:,} -> {size:,} CPU",
                    f"{big_cpu / small_cpu:.2f}x ({small_cpu:.2f} -> {big_cpu:.2f} s; per "
                    f"million {linear:.2f}x"
                    + (f", target <= {TARGET_LINEAR}x: {verdict})" if name == "ours" else ")"),
                )
            for phase in b["phases"]:
                # Phases of a few milliseconds (no requests, no fences to prune) are noise.
                if a["phases"].get(phase, 0) > 0.05 * a["wall"]:
                    ratio = b["phases"][phase] / a["phases"][phase] / (size / small)
                    common.line(
                        f"{name} {small:,} -> {size:,} {phase}",
                        f"per million {ratio:.2f}x ({a['phases'][phase]:.2f} -> "
                        f"{b['phases'][phase]:.2f} s)",
                    )
            growth = b["hwm_mb"] / a["hwm_mb"] - 1
            verdict = "met" if abs(growth) <= TARGET_FLAT else "MISSED"
            common.line(
                f"{name} {small:,} -> {size:,} peak RSS",
                f"{a['hwm_mb']:.1f} -> {b['hwm_mb']:.1f} MB ({growth:+.1%}"
                + (f"; target within {TARGET_FLAT:.0%}: {verdict})" if name == "ours" else ")"),
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
    backend = server_pid(connection)
    server_cpu = common.cpu_seconds(backend) if backend else None
    marks: list[tuple[str, int, float]] = []
    cpu = time.process_time()
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
    cpu = time.process_time() - cpu
    if server_cpu is not None:
        server_cpu = (common.cpu_seconds(backend) or server_cpu) - server_cpu
    memory = common.proc_memory_mb(os.getpid())
    # Each progress mark follows a committed batch: the gaps bound the transactions'
    # lengths. A mark that deleted nothing more ends a read-only step (the orphan
    # snapshot, or a range with no expired row).
    writes: dict[str, list[float]] = {}
    reads = [0.0]
    previous_t, previous_done = start, dict[str, int]()
    for phase, done, t in marks:
        if done > previous_done.get(phase, 0):
            writes.setdefault(phase, []).append(t - previous_t)
        else:
            reads.append(t - previous_t)
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
                "cpu": cpu,
                "server_cpu": server_cpu,
                "rss_before_mb": rss_before,
                "longest_tx": max([w for ws in writes.values() for w in ws] or [end - start]),
                "write_steps": {
                    phase: [common.percentile(ws, 50), common.percentile(ws, 99), max(ws), len(ws)]
                    for phase, ws in writes.items()
                },
                "longest_read": max(reads),
                "batches": len(marks),
                "phases": phases,
                "summary": summary,
            }
        )
    )


def server_pid(connection: Any) -> int:
    """Return the pid of this connection's PostgreSQL backend if it runs on this host, else 0."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = int(cursor.fetchone()[0])
    try:
        return pid if Path(f"/proc/{pid}/comm").read_text().strip() == "postgres" else 0
    except OSError:
        return 0


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
