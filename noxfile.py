"""The Django versions the app supports: the whole suite under each (`make test-django`).

`nox -s "tests(django='4.2')"` runs one. The database and broker come from the
environment as for `make test` (CI gives PostgreSQL + Redis). Python is the one
running nox: 3.11 here, the only one this machine and its package index give.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

# Each supported series, newest patch release; keep in step with the classifiers.
DJANGO = {"4.2": "Django>=4.2,<5.0", "5.1": "Django>=5.1,<5.2", "5.2": "Django>=5.2,<5.3"}


@nox.session
@nox.parametrize("django", list(DJANGO))
def tests(session: nox.Session, django: str) -> None:
    """Run the whole suite with the locked dependencies and Django `django`."""
    session.install("--quiet", "-r", "requirements.lock")
    session.install("--quiet", DJANGO[django])
    session.run("python", "-c", "import django; print('Django', django.get_version())")
    session.run(
        "python",
        "-m",
        "pytest",
        *session.posargs,
        env={"DJANGO_SETTINGS_MODULE": "config.settings.test"},
    )
