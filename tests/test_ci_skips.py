"""With CI set, a test skipped for a missing server or browser fails; a leg skip does not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = """
import pytest

def test_not_this_leg():
    pytest.skip("the database is sqlite")

@pytest.mark.skipif(True, reason="needs redis-server")
def test_missing_server():
    pass
"""


@pytest.mark.parametrize(
    ("ci", "expect", "exit_code"),
    [("true", "skipped in CI, where it must run: needs redis-server", 1), ("", "2 skipped", 0)],
)
def test_skips_for_missing_servers_fail_only_in_ci(
    tmp_path: Path, ci: str, expect: str, exit_code: int
) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text(SAMPLE)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.ci", str(sample)],
        cwd=ROOT,
        env={**os.environ, "CI": ci, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert expect in result.stdout, result.stdout + result.stderr
    assert "1 skipped" in result.stdout or "2 skipped" in result.stdout  # the leg skip stays
    assert result.returncode == exit_code
