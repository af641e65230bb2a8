"""Cost of the revocation fence: requests/s of an authenticated view with and without it.

Serves a one-view project with gunicorn on loopback (PostgreSQL + Redis) in three
variants, in rotating order each round: without RevocationMiddleware; with it and
each worker's fence copy (the default); with it and the copy off
(REVOCATION_FENCE_COPY_MAX_KEYS=0: one cache round trip per request, as before the
copy). Drives each with a bounded number of keep-alive requests from client threads.
Also: the database queries and cache calls per request, one fence check in process
against a bare Redis PING, how long a fence committed in another process takes to
reach this process's copy (p50/p99), and the copy's memory and load time with 100k
user fences.

    .venv/bin/python bench/fence.py [--requests 2000] [--rounds 6] [--engine db]
                                    [--fences 100000] [--propagations 300]
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

DB_NAME = "revocation_bench_fence"


# Variant -> (middleware installed, REVOCATION_FENCE_COPY_MAX_KEYS).
VARIANTS = {"without": (False, ""), "copy": (True, ""), "cache read": (True, "0")}


def serve(env: dict[str, str], port: int, variant: str) -> subprocess.Popen[bytes]:
    """Start gunicorn in `variant` (see VARIANTS); return once it answers."""
    fence, copy_max = VARIANTS[variant]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        cwd=c.ROOT,
        env={
            **env,
            "DJANGO_SETTINGS_MODULE": "bench._fence_settings",
            "BENCH_FENCE": "1" if fence else "0",
            **({"REVOCATION_FENCE_COPY_MAX_KEYS": copy_max} if copy_max else {}),
        },
    )

    def up() -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/me/")
            conn.getresponse().read()
            return True
        except OSError:
            return False

    c.wait_for(up, timeout=60, interval=0.1, what="gunicorn")
    return server


def load(port: int, cookie: str, total: int, threads: int) -> float:
    """Send `total` authenticated GETs over `threads` keep-alive connections; return req/s."""
    per_thread = total // threads
    failures: list[str] = []

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(per_thread):
            conn.request("GET", "/me/", headers={"Cookie": cookie})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                failures.append(f"{response.status} {body[:80]!r}")
        conn.close()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests, e.g. {failures[0]}")
    return per_thread * threads / elapsed


def count_calls(session_cookie: str, requests: int) -> dict[str, dict[str, float]]:
    """Return DB queries and cache calls per request, with and without the middleware."""
    from django.conf import settings
    from django.core.cache import caches
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    counts: dict[str, int] = {}
    methods = ("get", "get_many", "set", "set_many", "add", "delete", "delete_many")
    backend: Any = caches["default"]
    originals = {m: getattr(type(backend), m) for m in methods}

    def counting(name: str) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts[name] = counts.get(name, 0) + 1
            return originals[name](self, *args, **kwargs)

        return call

    result = {}
    without = [m for m in settings.MIDDLEWARE if m != "revocation.middleware.RevocationMiddleware"]
    for label, middleware in (("with fence", settings.MIDDLEWARE), ("without", without)):
        with override_settings(
            MIDDLEWARE=middleware, ROOT_URLCONF="bench._fence_urls", ALLOWED_HOSTS=["testserver"]
        ):
            client = Client()
            client.cookies[settings.SESSION_COOKIE_NAME] = session_cookie
            client.get("/me/")  # warm
            counts.clear()
            for m in methods:
                setattr(type(backend), m, counting(m))
            try:
                with CaptureQueriesContext(connection) as queries:
                    for _ in range(requests):
                        assert client.get("/me/").status_code == 200
            finally:
                for m, original in originals.items():
                    setattr(type(backend), m, original)
            result[label] = {
                "db": len(queries) / requests,
                "cache": sum(counts.values()) / requests,
            }
    return result


def check_cost(user_id: int, calls: int = 5000) -> dict[str, float]:
    """Return the mean µs of one fence check from the copy, from the cache, and of a PING."""
    from django.contrib.auth import SESSION_KEY
    from django.core.cache import caches

    from revocation import fencecopy, fences

    session = {SESSION_KEY: user_id}
    signed_in = time.time()
    client: Any = caches["default"]._cache.get_client()  # type: ignore[attr-defined]

    def mean_us(call: Any) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            call()
        return (time.perf_counter() - started) / calls * 1e6

    copy = fencecopy.current()
    assert copy is not None, "the fence copy is off: is the cache Redis?"
    c.wait_for(lambda: copy.answers(signed_in), timeout=30, interval=0.01, what="the copy")
    keys = [fences.user_key(user_id), fences.GLOBAL, fences.SCOPED]
    fences.fences_of(keys)  # warm: the first sight reads the database
    return {
        "copy": mean_us(lambda: fences.is_fenced(session, signed_in)),
        "cache": mean_us(lambda: fences.fences_of(keys)),
        "ping": mean_us(client.ping),
    }


def propagation(count: int) -> list[float]:
    """Return the ms from each commit in another process to its fence in this process's copy."""
    from revocation import fencecopy

    copy = fencecopy.current()
    assert copy is not None
    c.wait_for(lambda: copy.answers(time.time()), timeout=30, interval=0.01, what="the copy")
    keys = [f"user:propagation-{n}" for n in range(count)]
    seen: dict[str, float] = {}
    done = threading.Event()

    def watch() -> None:
        # Polls the copy as a request would read it, every 0.2 ms.
        while not done.is_set():
            now = time.time()
            for key in keys:
                if key not in seen and copy.values.get(key):
                    seen[key] = now
            time.sleep(0.0002)

    script = (
        "import sys, time, django; django.setup()\n"
        "from django.db import transaction\n"
        "from django.utils import timezone\n"
        "from revocation import fences\n"
        f"for key in {keys!r}:\n"
        "    with transaction.atomic():\n"
        "        fences.record([key], timezone.now())\n"
        "    print(key, time.time(), flush=True)\n"
        "    time.sleep(0.01)\n"
    )
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        out = subprocess.run(
            [sys.executable, "-c", script],
            cwd=c.ROOT,
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        ).stdout
        committed = {k: float(t) for k, t in (line.split() for line in out.splitlines())}
        c.wait_for(lambda: len(seen) == count, timeout=30, interval=0.01, what="every fence")
    finally:
        done.set()
        watcher.join()
    return [(seen[k] - committed[k]) * 1000 for k in keys]


def copy_memory(count: int) -> tuple[float, float, int]:
    """Load `count` user fences into a new copy; return its MB, its load seconds and its size."""
    from django.db import connection
    from django.utils import timezone

    from revocation.fencecopy import FenceCopy

    now = timezone.now()
    with connection.cursor() as cursor:
        c.bulk_load(
            cursor,
            "revocation_revocationfence",
            "key, not_before",
            ((f"user:{n}", now) for n in range(1, count + 1)),
        )
    copy = FenceCopy(max_keys=count * 2)
    started = time.perf_counter()
    copy.start()
    c.wait_for(lambda: copy.loads, timeout=120, interval=0.01, what="the load")
    seconds = time.perf_counter() - started
    values = copy.values
    size = sys.getsizeof(values) + sum(
        sys.getsizeof(k) + sys.getsizeof(v) for k, v in values.items()
    )
    copy.stop()
    return size / 2**20, seconds, len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--engine", default="db", help="SESSION_ENGINE short name")
    parser.add_argument("--fences", type=int, default=100_000, help="user fences in the copy")
    parser.add_argument("--propagations", type=int, default=300, help="fences timed")
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", c.DEFAULT_PG))
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", c.DEFAULT_REDIS))
    args = parser.parse_args()

    env = c.configure(
        tag="fence",
        server_url=args.pg,
        db_name=DB_NAME,
        redis_url=args.redis,
        session_engine=args.engine,
    )
    # Persistent connections, as any deployment has (or a pool): a connect per request
    # (about 5 ms) would otherwise hide everything else a request costs.
    env["CONN_MAX_AGE"] = "60"
    c.create_database(args.pg, DB_NAME)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        c.setup_django()
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.test import Client

        user = get_user_model().objects.create_user("bench")
        client = Client()
        client.force_login(user)
        session_cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        cookie = f"{settings.SESSION_COOKIE_NAME}={session_cookie}"

        c.header(
            "revocation fence overhead",
            engine=args.engine,
            server="gunicorn, 2 sync workers, 127.0.0.1",
            load=f"{args.rounds} rounds x {args.requests} GET /me/ per variant, "
            f"{args.threads} keep-alive client threads",
        )
        rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for round_no in range(args.rounds):
            # Rotate the order: no variant always runs first (or last) in a round.
            order = list(VARIANTS)[round_no % 3 :] + list(VARIANTS)[: round_no % 3]
            for n, variant in enumerate(order):
                port = 18000 + round_no * 3 + n
                server = serve(env, port, variant)
                servers.append(server)
                load(port, cookie, args.requests // 5, args.threads)  # warm both workers
                rates[variant].append(load(port, cookie, args.requests, args.threads))
                server.terminate()
                server.wait(timeout=30)
        for variant, label in (
            ("without", "without middleware"),
            ("copy", "with fence, fence copy (default)"),
            ("cache read", "with fence, copy off (a cache read)"),
        ):
            runs = ", ".join(f"{r:.0f}" for r in rates[variant])
            c.line(f"requests/s {label}", f"{statistics.median(rates[variant]):.0f} (runs {runs})")
        # Each round runs every variant: its ratios cancel the machine's drift.
        for variant, target in (("copy", "target < 2%"), ("cache read", "before the copy")):
            ratios = sorted(w / wo for w, wo in zip(rates[variant], rates["without"], strict=True))
            ratio = statistics.median(ratios)
            c.line(
                f"overhead, {variant} (median of per-round ratios)",
                f"{(1 - ratio) * 100:.1f}% (ratio {ratio:.3f}, rounds "
                f"{ratios[0]:.3f}..{ratios[-1]:.3f}; {target})",
            )
        for label, figures in count_calls(session_cookie, 200).items():
            c.line(
                f"per request {label}",
                f"{figures['db']:.2f} DB queries, {figures['cache']:.2f} cache calls",
            )
        cost = check_cost(user.pk)
        c.line(
            "fence check in process (mean)",
            f"{cost['copy']:.1f} µs from the copy; {cost['cache']:.0f} µs from the cache; "
            f"a bare Redis PING {cost['ping']:.0f} µs",
        )
        lags = propagation(args.propagations)
        c.line(
            "commit in another process -> this process's copy",
            f"p50 {c.percentile(lags, 50):.1f} ms, p99 {c.percentile(lags, 99):.1f} ms, "
            f"max {max(lags):.1f} ms (n={len(lags)}; p99 target < 100 ms)",
        )
        mb, seconds, held = copy_memory(args.fences)
        c.line(
            f"fence copy holding {held} user fences",
            f"{mb:.1f} MB ({mb * 2**20 / held:.0f} bytes a fence), loaded in {seconds:.2f} s",
        )
    finally:
        for server in servers:
            if server.poll() is None:
                server.kill()
        c.drop_database(args.pg, DB_NAME)


if __name__ == "__main__":
    main()
