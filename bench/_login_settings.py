"""Settings of the login benchmark: production settings, with the MD5 password hasher.

A real hasher (PBKDF2, ~300 ms a login by design) would hide everything else a
login costs; MD5 makes the rest of the request visible.
"""

import os

from config.settings.production import *  # noqa: F403
from config.settings.production import DATABASES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if os.environ.get("BENCH_ATOMIC_REQUESTS") == "1":
    # For comparison only (--vendors postgresql+atomic): each view in one transaction.
    DATABASES["default"]["ATOMIC_REQUESTS"] = True
if os.environ.get("BENCH_SQLITE_WAL") == "1":
    # For comparison only (--vendors sqlite+wal): SQLite in WAL mode,
    # where a commit appends to the log instead of syncing a rollback journal and the file.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
