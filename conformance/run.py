"""Run Django's own sessions_tests and auth_tests, stock and with `revocation` installed.

`make conformance` (also a step of .ci/run). It fetches the source distribution of the
installed Django with pip into .venv/django-src/ (once), then runs its tests/runtests.py
twice on SQLite in memory: stock, then with "revocation" in INSTALLED_APPS (before
django.contrib.sessions) and RevocationMiddleware right after AuthenticationMiddleware in
every middleware chain a test builds (conformance/harness.py). A test that passes stock
and fails with the app is a defect, unless conformance/allowlist.txt lists it with the
reason it is by design. Exit status 1 when any such test is left; the full output of
each run is kept in .venv/django-src/conformance-<run>.log.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = REPO / ".venv" / "django-src"
ALLOWLIST = HERE / "allowlist.txt"
LABELS = ("sessions_tests", "auth_tests")
MIDDLEWARE = "revocation.middleware.RevocationMiddleware"
# Serial: with --parallel, a failing test's traceback must be pickled back to the parent,
# which needs tblib (not a dependency of ours); without it the whole run aborts.
RUNTESTS_ARGS = ("--settings=conformance.settings", "--parallel=1", "--noinput")
RUN_TIMEOUT = 900
EXCEPTION_LINE = re.compile(r"[A-Za-z_][\w.]*: ")


@dataclass
class Run:
    """What one runtests.py run reported."""

    tests_run: int
    failing: dict[str, str]
    installed_apps: list[str]
    handler_middleware: list[str]


def django_sources(django_version: str) -> Path:
    """Return Django's tests/ folder for `django_version`, downloading it the first time."""
    root = CACHE / f"django-{django_version}"
    if (root / "tests" / "runtests.py").is_file():
        return root / "tests"
    CACHE.mkdir(parents=True, exist_ok=True)
    archives = sorted(CACHE.glob(f"[Dd]jango-{django_version}.tar.gz"))
    if not archives:
        print(f"conformance: downloading the Django {django_version} sources", flush=True)
        subprocess.run(  # noqa: S603
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
            + ["--no-binary", ":all:", f"Django=={django_version}", "--dest", str(CACHE)],
            check=True,
        )
        archives = sorted(CACHE.glob(f"[Dd]jango-{django_version}.tar.gz"))
    # Unpack beside the cache and rename, so an interrupted run never leaves half a tree.
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        with tarfile.open(archives[0]) as archive:
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4+
                archive.extractall(scratch, filter="data")
            else:
                archive.extractall(scratch)  # noqa: S202  (PyPI's own Django sdist)
        shutil.rmtree(root, ignore_errors=True)
        (Path(scratch) / root.name).rename(root)
    return root / "tests"


def run_tests(tests_dir: Path, mode: str) -> Run:
    """Run runtests.py through the harness in `mode`; keep its output in a log file."""
    result_file = CACHE / f"conformance-{mode}.json"
    result_file.unlink(missing_ok=True)
    log = CACHE / f"conformance-{mode}.log"
    # The app's settings fall back to REVOCATION_* variables: keep the caller's out.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVOCATION_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["CONFORMANCE_RESULT"] = str(result_file)
    command = [sys.executable, str(HERE / "harness.py"), mode, str(tests_dir)]
    # A scratch working directory: whatever a test writes to "." stays out of the repository.
    with log.open("w") as output, tempfile.TemporaryDirectory(prefix="conformance-") as cwd:
        subprocess.run(  # noqa: S603
            [*command, *LABELS, *RUNTESTS_ARGS],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            timeout=RUN_TIMEOUT,
            check=False,  # failing tests exit 1; the result file says which
        )
    if not result_file.is_file():
        raise SystemExit(f"conformance {mode}: runtests.py crashed, see {log}")
    record = json.loads(result_file.read_text())
    return Run(
        tests_run=record["tests_run"],
        failing=record["failing"],
        installed_apps=record["installed_apps"],
        handler_middleware=record["handler_middleware"],
    )


def read_allowlist(path: Path = ALLOWLIST) -> dict[str, str]:
    """Return allowlisted test ids (or fnmatch patterns) with the reason of each."""
    allowed: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        test_id, _, reason = line.partition("#")
        if not reason.strip():
            raise SystemExit(f"{path}:{number}: say why {test_id.strip()} is by design")
        allowed[test_id.strip()] = reason.strip()
    return allowed


def summary(trace: str) -> str:
    """Return the kind and the exception line of a recorded failure."""
    kind, _, rest = trace.partition("\n")
    lines = [line.strip() for line in rest.splitlines() if line.strip()]
    # The message may span lines: name the last line that starts with an exception.
    raised = [line for line in lines if EXCEPTION_LINE.match(line)]
    last = raised[-1] if raised else lines[-1] if lines else ""
    return f"{kind}: {last}" if last else kind


def main() -> int:
    """Run both legs, print one line each, and fail on an app-only failure not allowlisted."""
    django_version = version("Django")
    tests_dir = django_sources(django_version)
    stock = run_tests(tests_dir, "stock")
    print(f"conformance stock: {stock.tests_run} tests, {len(stock.failing)} failures", flush=True)
    ours = run_tests(tests_dir, "revocation")
    if "revocation" in stock.installed_apps or MIDDLEWARE in stock.handler_middleware:
        raise SystemExit("conformance: the stock run had the app or its middleware installed")
    if "revocation" not in ours.installed_apps or MIDDLEWARE not in ours.handler_middleware:
        raise SystemExit("conformance: the app or its middleware was not installed in the run")
    allowed = read_allowlist()
    app_only = sorted(set(ours.failing) - set(stock.failing))
    allowlisted = [t for t in app_only if any(fnmatchcase(t, p) for p in allowed)]
    print(
        f"conformance with revocation: {ours.tests_run} tests, {len(ours.failing)} failures "
        f"({len(allowlisted)} allowlisted)",
        flush=True,
    )
    if stock.failing:
        print(f"  failing stock too, ignored (see {CACHE}/conformance-stock.log):")
        for test_id in sorted(stock.failing):
            print(f"    {test_id}")
    for pattern in allowed:
        if not any(fnmatchcase(t, pattern) for t in app_only):
            print(f"  allowlisted but not failing, remove it from {ALLOWLIST.name}: {pattern}")
    defects = [t for t in app_only if t not in allowlisted]
    if not defects:
        return 0
    log = CACHE / "conformance-revocation.log"
    print(f"FAILING ONLY WITH revocation ({len(defects)}; tracebacks in {log}):")
    for test_id in defects:
        print(f"  {test_id}\n    {summary(ours.failing[test_id])}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
