"""Mutation testing of the security core: `make mutation` (slow, not part of CI).

mutmut (configured in pyproject.toml, [tool.mutmut]) copies the project into
mutants/, mutates the modules below and runs, for each mutant, the tests that
reach the mutated function. Two legs, like CI's:

1. the embedded default (SQLite + file cache): every target mutant but those of
   fencecopy.py (Redis only) and of the fan-out (never on SQLite);
2. PostgreSQL + Redis: the modules with branches only those servers take - all of
   deletion.py and the one-statement page delete of sql/postgresql.py, engines.py (the
   eviction of cached copies from Redis), monotonic.py (its Redis branch),
   fencecopy.py (Redis only), the fan-out of the job pages (never on SQLite), and
   the fence functions that read or feed the fence copy.

The second leg runs only the mutants of those modules the first left alive. A mutant
counts as killed if a test failed (or timed out) on either leg. The report gives
killed/total per module and overall; the last line is `mutation score: N%`, that
overall killed/total with nothing excluded. The score
without the survivors listed as equivalent in tests/mutation-equivalents.md is
printed just before it. Exit status 1 below MUTATION_MIN_SCORE (90).

Environment: MUTATION_DATABASE_URL and MUTATION_REDIS_URL (the PostgreSQL leg),
MUTATION_MAX_CHILDREN (mutants tested at once, default the number of CPUs; each has
its own test database and cache, see mutation/plugin.py; the PostgreSQL leg uses that
many Redis databases from MUTATION_REDIS_URL's on). Every leg runs with
REVOCATION_VAR_DIR in a temporary folder, removed afterwards. Each leg's exit codes are
saved beside its log (/tmp/revocation-mutation-legN.json); with
MUTATION_REUSE_EMBEDDED=<the leg 1 file> the embedded leg is read back, not run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MUTANTS = REPO / "mutants"
EQUIVALENTS = REPO / "tests" / "mutation-equivalents.md"
MUTMUT = Path(sys.executable).parent / "mutmut"
MIN_SCORE = float(os.environ.get("MUTATION_MIN_SCORE", "90"))

# Report rows: a name and the mutant names (globs) it covers. cachelock.py has no
# mutant: its only function of substance is a decorated generator, which mutmut skips.
PG = "revocation.sql.postgresql"
ENGINE_METHODS = (
    "__init__",
    "session_model",
    "delete",
    "evict",
    "_evict_after_commit",
    "_delete_cached",
    "live",
    "link_key",
)
MODULES = {
    "fences": ["revocation.fences.*"],
    "fence copy": ["revocation.fencecopy.*"],
    "monotonic": ["revocation.monotonic.*"],
    "cachelock": ["revocation.cachelock.*"],
    "deletion": ["revocation.deletion.*"],
    # Of the engine strategy, what deletes sessions and evicts their copies, and which
    # sessions are live and under which key (the rest, clear_expired, stored and the
    # clearsessions notes, is maintenance).
    "engines: delete + evict": [
        "revocation.engines.x_*",
        *(f"revocation.engines.xǁ*ǁ{method}__mutmut_*" for method in ENGINE_METHODS),
    ],
    # Of the PostgreSQL SQL, the one-statement page deletion (the rest is maintenance).
    "sql: PostgreSQL page delete": [f"{PG}.xǁPostgreSQLǁdelete_mapped__mutmut_*"],
    "linking": ["revocation.linking.*"],
    "middleware": ["revocation.middleware.*"],
    "lifetimes": ["revocation.lifetimes.*"],
    "job pages (services.jobs)": ["revocation.services.jobs.*"],
}
PAGES = "revocation.services.jobs"
JOBS = f"{PAGES}.*"
TARGETS = [glob for globs in MODULES.values() for glob in globs]
# The job functions of the fan-out, which SQLite never takes.
FANOUT = (
    "_fans_out",
    "_single_writer",
    "_split",
    "_start_parts",
    "_run_part",
    "_process_part_page",
    "_finish_parts",
)
# The embedded leg's job functions: all but the fan-out's, which SQLite never takes
# (its tests there only wait for their timeout). A function missing from both legs is
# still reported: main() counts every generated mutant that neither leg ran.
EMBEDDED_JOBS = (
    "run_request",
    "_process_page",
    "_user_id",
    "_revoke_user_page",
    "_revoke_mapped",
    "_revoke_session_page",
    "_fans_out",
    "_finished",
    "fail_request",
)
# Inert without Redis (no test of it runs on the embedded leg): the second leg only.
REDIS_ONLY = ["revocation.fencecopy.*"]
# Killed only on PostgreSQL + Redis: SQLite never takes the set-based deletion, and the
# file cache never takes the Redis branches.
SERVER_TARGETS = [
    "revocation.deletion.*",
    *MODULES["engines: delete + evict"],
    f"{PG}.xǁPostgreSQLǁdelete_mapped__mutmut_*",
    "revocation.monotonic.*",
    "revocation.fencecopy.*",
    # The fan-out of large requests over parallel part tasks (never on SQLite), and the
    # page that decides to split.
    *(f"{PAGES}.x_{name}__mutmut_*" for name in (*FANOUT, "_process_page")),
    # The fence check and record, which use the fence copy (Redis only) when it answers.
    *(f"revocation.fences.x_{name}__mutmut_*" for name in ("is_fenced", "_lookup", "_mirror")),
]
# mutmut's exit codes (mutmut.stats.status_by_exit_code): a failing or timed-out test run
# detected the mutant. 33 and 5 mean no test reached it.
KILLED = {1, 3, 36, -24, 24, 152, 255}
# Of those, a timeout (SIGXCPU): a mutant that loops forever, or a test run slowed past
# its limit by a loaded machine. Reported apart so a reader can check them by hand.
TIMEOUTS = {36, -24, 24, 152, 255}
NO_TESTS = {5, 33}
MUTANT_ID = re.compile(r"`?(revocation\.[\w.ǁ]+__mutmut_\d+)`?")


@dataclass
class Leg:
    """One mutmut run: its name, environment and mutant names."""

    name: str
    env: dict[str, str]
    targets: list[str]
    results: dict[str, int | None] = field(default_factory=dict)
    # Every mutant of the report's modules mutmut generated, run by this leg or not.
    generated: set[str] = field(default_factory=set)


def leg_env(var_dir: Path, **servers: str) -> dict[str, str]:
    """Return the environment of a leg: the given servers, or the embedded default."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SESSION_ENGINE")
    }
    env.update(servers, REVOCATION_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
    return env


def run_leg(leg: Leg, log: Path) -> None:
    """Run mutmut on `leg.targets` from a fresh mutants/; keep each mutant's exit code."""
    shutil.rmtree(MUTANTS, ignore_errors=True)
    children = os.environ.get("MUTATION_MAX_CHILDREN", str(os.cpu_count() or 1))
    command = [str(MUTMUT), "run", "--max-children", children, *leg.targets]
    print(f"== {leg.name}: {len(leg.targets)} targets (log: {log})", flush=True)
    started = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(command, cwd=REPO, env=leg.env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    if done.returncode != 0:
        print(log.read_text()[-3000:])
        raise SystemExit(f"mutation: mutmut failed on the {leg.name} leg (exit {done.returncode})")
    for meta in MUTANTS.glob("revocation/**/*.py.meta"):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        leg.results.update({k: v for k, v in codes.items() if matches(k, leg.targets)})
        leg.generated.update(k for k in codes if matches(k, TARGETS))
    # Kept beside the log (mutants/ is replaced by the next leg); MUTATION_REUSE_EMBEDDED
    # reads the first leg's back.
    saved = {"results": leg.results, "generated": sorted(leg.generated)}
    log.with_suffix(".json").write_text(json.dumps(saved, indent=0, sort_keys=True))
    print(f"== {leg.name}: {len(leg.results)} mutants in {time.monotonic() - started:.0f} s")


def drop_test_databases(url: str, var_dir: Path) -> None:
    """Drop the PostgreSQL test databases the slots of a leg kept (`--reuse-db`)."""
    slots = len(list((var_dir / "mutation-slots").glob("slot-*.lock")))
    if not slots:
        return
    import environ
    import psycopg

    config = environ.Env.db_url_config(url)
    with psycopg.connect(
        host=config["HOST"],
        port=config["PORT"] or 5432,
        user=config["USER"],
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as connection:
        for slot in range(slots):
            name = f"test_{config['NAME']}_slot{slot}"
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')  # type: ignore[arg-type]


def matches(name: str, globs: Iterable[str]) -> bool:
    """Return whether the mutant `name` is covered by one of `globs`."""
    return any(fnmatchcase(name, glob) for glob in globs)


def equivalents() -> set[str]:
    """Return the mutant ids tests/mutation-equivalents.md lists as equivalent."""
    if not EQUIVALENTS.exists():
        return set()
    # Its second section lists survivors that are not equivalent: they stay counted.
    text = EQUIVALENTS.read_text().split("\n## Not killed", 1)[0]
    return set(MUTANT_ID.findall(text))


def percent(part: int, whole: int) -> float:
    """Return `part` of `whole` in percent (100 for nothing to kill)."""
    return 100.0 * part / whole if whole else 100.0


def report(verdicts: dict[str, bool], timed_out: set[str], listed: set[str]) -> float:
    """Print the per-module scores and the survivors; return the overall killed/total."""
    print(
        f"{'module':<28}{'killed':>7}{'(timeout)':>10}{'total':>6}{'score':>8}"
        f"{'equiv.':>7}{'w/o equiv.':>11}"
    )
    for module, globs in MODULES.items():
        names = [n for n in verdicts if matches(n, globs)]
        killed = sum(verdicts[n] for n in names)
        timeouts = sum(1 for n in names if n in timed_out)
        equiv = sum(1 for n in names if not verdicts[n] and n in listed)
        print(
            f"{module:<28}{killed:>7}{timeouts:>10}{len(names):>6}"
            f"{percent(killed, len(names)):>7.1f}%{equiv:>7}"
            f"{percent(killed, len(names) - equiv):>10.1f}%"
        )
    survivors = sorted(n for n, killed in verdicts.items() if not killed)
    unlisted = [n for n in survivors if n not in listed]
    # Listed but killed: the list is out of date (ids renumber when a function changes).
    stale = sorted(n for n in listed if verdicts.get(n))
    print(f"\nsurvivors: {len(survivors)} ({len(survivors) - len(unlisted)} listed as equivalent)")
    for name in unlisted:
        print(f"  not listed: {name}  (mutmut show {name})")
    for name in stale:
        print(f"  listed as equivalent but killed: {name}")
    for name in sorted(timed_out):
        print(f"  killed by a timeout only: {name}")
    killed = sum(verdicts.values())
    equiv = len(survivors) - len(unlisted)
    print(
        f"\nmutation score without the {equiv} survivors listed as equivalent: "
        f"{percent(killed, len(verdicts) - equiv):.1f}%"
    )
    return percent(killed, len(verdicts))


def main() -> int:
    """Run both legs, combine them, print the report; fail below the minimum score."""
    database = os.environ.get(
        "MUTATION_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/revocation_mutation"
    )
    redis = os.environ.get("MUTATION_REDIS_URL", "redis://127.0.0.1:6379/0")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="revocation-mutation-") as tmp:
        root = Path(tmp)
        legs = [
            Leg(
                "embedded (SQLite + file cache)",
                leg_env(root / "embedded"),
                [
                    *(t for t in TARGETS if t not in REDIS_ONLY and t != JOBS),
                    *(f"{PAGES}.x_{name}__mutmut_*" for name in EMBEDDED_JOBS),
                ],
            ),
            Leg(
                "PostgreSQL + Redis",
                leg_env(root / "servers", DATABASE_URL=database, REDIS_URL=redis),
                SERVER_TARGETS,
            ),
        ]
        embedded, servers = legs
        try:
            reuse = os.environ.get("MUTATION_REUSE_EMBEDDED")
            if reuse:
                saved = json.loads(Path(reuse).read_text())
                embedded.results, embedded.generated = saved["results"], set(saved["generated"])
                print(f"== {embedded.name}: {len(embedded.results)} results read from {reuse}")
            else:
                run_leg(embedded, root.parent / "revocation-mutation-leg1.log")
            # Only what the embedded leg left alive: a mutant killed once is killed.
            servers.targets = sorted(
                name
                for name in embedded.generated
                if matches(name, SERVER_TARGETS) and embedded.results.get(name) not in KILLED
            )
            if servers.targets:
                run_leg(servers, root.parent / "revocation-mutation-leg2.log")
        finally:
            drop_test_databases(database, root / "servers")
    verdicts = {name: code in KILLED for name, code in legs[0].results.items()}
    for name, code in legs[1].results.items():
        verdicts[name] = verdicts.get(name, False) or code in KILLED
    # Generated but in neither leg's targets (a new function of a split module): a survivor.
    for name in sorted(set().union(*(leg.generated for leg in legs)) - verdicts.keys()):
        print(f"  run by neither leg: {name}")
        verdicts[name] = False
    # Killed by a timeout on one leg and by no failing test on either.
    failed = {n for leg in legs for n, c in leg.results.items() if c in KILLED - TIMEOUTS}
    timed_out = {
        n for leg in legs for n, c in leg.results.items() if c in TIMEOUTS and n not in failed
    }
    no_tests = sorted(n for n, c in legs[0].results.items() if c in NO_TESTS and not verdicts[n])
    for name in no_tests:
        print(f"  reached by no test: {name}")
    print(f"\nboth legs: {time.monotonic() - started:.0f} s\n")
    score = report(verdicts, timed_out, equivalents())
    print(f"mutation score: {score:.1f}%")
    return 0 if score >= MIN_SCORE else 1


if __name__ == "__main__":
    sys.exit(main())
