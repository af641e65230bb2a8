"""The import contracts of `make lint` hold, and break on an upward import or a cycle."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports (its contracts are in pyproject.toml) on the project at `tree`."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Return a copy of the project's packages and contracts to break."""
    for package in ("revocation", "config", "workers"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_contracts_hold(tree: Path) -> None:
    done = lint_imports(tree)
    assert done.returncode == 0, done.stdout
    assert "4 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # A model reaching up to a view: the layers contract.
        ("revocation/models.py", "from revocation import views", "is not allowed to import"),
        # A domain module reaching up to the services.
        ("revocation/fences.py", "from revocation import services", "is not allowed to import"),
        # A face skipping the services to reach the domain.
        ("revocation/views.py", "from revocation import fences", "is not allowed to import"),
        # The app reaching into the project around it.
        ("revocation/engines.py", "import config.settings.base", "revocation.engines -> config"),
        # Two domain modules importing each other (targets already imports fences).
        ("revocation/fences.py", "from revocation import targets", "No cycles are allowed"),
    ],
)
def test_a_bad_import_breaks_a_contract(tree: Path, module: str, line: str, broken: str) -> None:
    with (tree / module).open("a") as source:
        source.write(f"\n{line}  # noqa\n")
    done = lint_imports(tree)
    assert done.returncode == 1
    assert broken in done.stdout
