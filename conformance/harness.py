"""Run Django's tests/runtests.py, stock or with the `revocation` app installed.

Usage: python conformance/harness.py {stock,revocation} DJANGO_TESTS_DIR [runtests args...]
"""

from __future__ import annotations

import ast
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeGuard

REPO = Path(__file__).resolve().parent.parent
APP = "revocation"
SESSIONS_APP = "django.contrib.sessions"
MIDDLEWARE = "revocation.middleware.RevocationMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
MODES = ("stock", "revocation")


def with_revocation_middleware(middleware: Sequence[str]) -> list[str]:
    """Return `middleware` with RevocationMiddleware right after AuthenticationMiddleware."""
    names = list(middleware)
    if AUTH_MIDDLEWARE in names and MIDDLEWARE not in names:
        names.insert(names.index(AUTH_MIDDLEWARE) + 1, MIDDLEWARE)
    return names


class HandlerSettings:
    """Django's settings as the request handler sees them: MIDDLEWARE gains ours."""

    def __getattr__(self, name: str) -> Any:
        from django.conf import settings

        value = getattr(settings, name)
        return with_revocation_middleware(value) if name == "MIDDLEWARE" else value


def install_middleware() -> None:
    """Put RevocationMiddleware into every middleware chain any handler builds."""
    # BaseHandler.load_middleware() is the one place where every handler (test Client,
    # AsyncClient, WSGI, ASGI) turns settings.MIDDLEWARE into a chain; it reads the setting
    # through base.py's module-level `settings` whenever a handler is built, i.e. per
    # test client, inside any override_settings/modify_settings of the test. Swapping
    # that one name covers every MIDDLEWARE a test uses, whereas editing the setting
    # itself would miss override_settings(MIDDLEWARE=[...]); tests that read
    # settings.MIDDLEWARE still see exactly what they set.
    from django.core.handlers import base

    base.settings = HandlerSettings()  # type: ignore[attr-defined]


def configure_celery() -> None:
    """Run revocation tasks eagerly, as a worker would, with no broker at all."""
    # Without an app of our own, shared_task uses Celery's default app, whose broker is
    # amqp://localhost: a real RabbitMQ on this machine would receive the messages.
    from celery import Celery

    app = Celery("conformance", set_as_current=True)
    app.conf.update(broker_url="memory://", task_always_eager=True, task_eager_propagates=True)
    app.set_default()


def _is_main_guard(node: ast.stmt) -> TypeGuard[ast.If]:
    """Tell whether `node` is the `if __name__ == "__main__":` block."""
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def run(mode: str, tests_dir: Path, args: list[str]) -> None:
    """Execute runtests.py as __main__, installing our app between its definitions and main."""
    # runtests.py assigns settings.INSTALLED_APPS = ALWAYS_INSTALLED_APPS itself, so no
    # settings module can add an app: run its definitions, edit that list, then its main.
    path = tests_dir / "runtests.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    guards = [node for node in tree.body if _is_main_guard(node)]
    if len(guards) != 1:
        raise SystemExit(f"{path}: expected one `if __name__ == '__main__':` block")
    guard = guards[0]
    definitions = [node for node in tree.body if node is not guard]
    module = types.ModuleType("__main__")
    module.__file__ = str(path)
    sys.modules["__main__"] = module
    sys.argv = [str(path), *args]
    sys.path[0] = str(tests_dir)  # where runtests.py expects itself
    sys.path.append(str(REPO))  # last: Django's test modules win any name clash
    namespace = module.__dict__
    exec(compile(ast.Module(definitions, []), str(path), "exec"), namespace)  # noqa: S102
    if mode == "revocation":
        apps: list[str] = namespace["ALWAYS_INSTALLED_APPS"]
        # Before django.contrib.sessions, as in a real project: our clearsessions shadows its.
        apps.insert(apps.index(SESSIONS_APP), APP)
        # The base list too, so that system checks see the project as configured.
        base_middleware: list[str] = namespace["ALWAYS_MIDDLEWARE"]
        base_middleware[:] = with_revocation_middleware(base_middleware)
        install_middleware()
        configure_celery()
    exec(compile(ast.Module(guard.body, []), str(path), "exec"), namespace)  # noqa: S102


def main() -> None:
    """Parse MODE and DJANGO_TESTS_DIR, pass the rest to runtests.py."""
    if len(sys.argv) < 3 or sys.argv[1] not in MODES:
        raise SystemExit(__doc__)
    run(sys.argv[1], Path(sys.argv[2]).resolve(), sys.argv[3:])


if __name__ == "__main__":
    main()
