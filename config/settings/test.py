"""Test settings: PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set, else embedded."""

import os
import uuid
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-only-not-secret")
# Test runs never share broker messages with `make run`.
os.environ.setdefault(
    "REVOCATION_BROKER_DIR",
    str(Path(__file__).resolve().parent.parent.parent / "var" / "test-broker"),
)

from .base import *  # noqa: E402,F403
from .base import DATABASES, VAR_DIR  # noqa: E402

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so a worker subprocess sees the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

# A queue of its own per test run: nothing left by an earlier run is consumed.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get(
    "CELERY_TASK_DEFAULT_QUEUE", f"revocation-test-{uuid.uuid4().hex[:8]}"
)

# A test-only organisation model, resolved through REVOCATION_SCOPES like a project's.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.orgs"]  # noqa: F405
if "REVOCATION_SCOPES" not in os.environ:  # a worker subprocess gets it from there
    REVOCATION_SCOPES = {"org": "tests.orgs.scopes.org_members", "gated": "tests.scopes.gated"}
