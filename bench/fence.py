"""Cost of the revocation fence: requests/s of an authenticated view with and without it.

Serves a one-view project with gunicorn on loopback (PostgreSQL + Redis), once with
RevocationMiddleware and once without, alternating rounds, and drives it with a
bounded number of keep-alive requests from client threads. Also counts, in process,
the database queries and cache calls each request makes in both variants, and times
one fence check against a bare Redis PING.

    .venv/bin/python bench/fence.py [--requests 2000] [--rounds 6] [--engine db]
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


def serve(env: dict[str, str], port: int, fence: bool) -> subprocess.Popen[bytes]:
    """Start gunicorn with or without the middleware; return once it answers."""
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


def check_cost(user_id: int, calls: int = 5000) -> tuple[float, float]:
    """Return the mean µs of one fence check and of a bare Redis PING, in this process."""
    from django.core.cache import caches

    from revocation import fences

    keys = [fences.user_key(user_id), fences.GLOBAL]
    client: Any = caches["default"]._cache.get_client()  # type: ignore[attr-defined]

    def mean_us(call: Any) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            call()
        return (time.perf_counter() - started) / calls * 1e6

    fences.latest(keys)  # warm: the first sight reads the database
    return mean_us(lambda: fences.latest(keys)), mean_us(client.ping)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--engine", default="db", help="SESSION_ENGINE short name")
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
        rates: dict[bool, list[float]] = {True: [], False: []}
        for round_no in range(args.rounds):
            for fence in (False, True) if round_no % 2 == 0 else (True, False):
                port = 18000 + round_no * 2 + int(fence)
                server = serve(env, port, fence)
                servers.append(server)
                load(port, cookie, args.requests // 5, args.threads)  # warm both workers
                rates[fence].append(load(port, cookie, args.requests, args.threads))
                server.terminate()
                server.wait(timeout=30)
        with_fence, without = statistics.median(rates[True]), statistics.median(rates[False])
        # Each round runs both variants back to back: its ratio cancels the machine's drift.
        ratios = sorted(w / wo for w, wo in zip(rates[True], rates[False], strict=True))
        c.line(
            "requests/s without middleware (median)",
            f"{without:.0f} (runs {', '.join(f'{r:.0f}' for r in rates[False])})",
        )
        c.line(
            "requests/s with fence (median)",
            f"{with_fence:.0f} (runs {', '.join(f'{r:.0f}' for r in rates[True])})",
        )
        ratio = statistics.median(ratios)
        c.line(
            "overhead (median of per-round ratios)",
            f"{(1 - ratio) * 100:.1f}% (ratio {ratio:.3f}, rounds {ratios[0]:.3f}..{ratios[-1]:.3f}; "
            "target < 5%)",
        )
        for label, figures in count_calls(session_cookie, 200).items():
            c.line(
                f"per request {label}",
                f"{figures['db']:.2f} DB queries, {figures['cache']:.2f} cache calls",
            )
        check, ping = check_cost(user.pk)
        c.line(
            "fence check in process (mean)",
            f"{check:.0f} µs; a bare Redis PING {ping:.0f} µs (the round trip is the cost)",
        )
    finally:
        for server in servers:
            if server.poll() is None:
                server.kill()
        c.drop_database(args.pg, DB_NAME)


if __name__ == "__main__":
    main()
